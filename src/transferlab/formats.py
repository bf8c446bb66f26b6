"""Numbers as people write them, for messages that must not load torch (verdicts, the report)."""

from __future__ import annotations


def format_rate(lr: float) -> str:
    """1e-4, 2.5e-5: a learning rate as people write it."""
    mantissa, exponent = f"{lr:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def fmt_seconds(s: float) -> str:
    """12.3 s, 4.5 min, 1.2 h."""
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def fmt_bytes(n: int | float) -> str:
    return f"{n / 2**20:.0f} MiB" if n < 2**30 else f"{n / 2**30:.1f} GiB"


def fmt_epochs(e: float) -> str:
    """1 epoch, 3 epochs, 3.4 epochs (a fraction trains part of the last one)."""
    text = f"{e:g}" if float(e).is_integer() else f"{e:.1f}"
    return f"{text} epoch{'' if text == '1' else 's'}"
