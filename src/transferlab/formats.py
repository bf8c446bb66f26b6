"""Numbers as people write them, for messages that must not load torch (verdicts, the report)."""

from __future__ import annotations


def format_rate(lr: float) -> str:
    """1e-4, 2.5e-5: a learning rate as people write it."""
    mantissa, exponent = f"{lr:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
