"""The ladder: one module per rung, all behind one registry.

Which rungs are controls, transfer, cheap or trained is declared by each rung (see ``Rung``);
:func:`strategies` derives every list of rungs from the registry, so a rung registered from
outside the package takes part like the packaged ones.
"""

from . import classical, frozen, lora, majority, small, trainable, zero_shot  # noqa: F401  (registration)
from .base import ROLES, RUNGS, SEEDINGS, Context, Rung, RungOutput
from .fitted import FITTED, Fitted


def strategies(**declared) -> list[str]:
    """The registered rungs whose declared attributes equal ``declared``, simplest first:
    ``strategies()`` (all), ``strategies(role="control")``, ``strategies(needs_backbone=True, cheap=False)``."""
    unknown = [k for k in declared if not hasattr(Rung, k)]
    if unknown:
        known = [k for k in vars(Rung) if not k.startswith("_") and not callable(getattr(Rung, k))]
        raise TypeError(f"Rung declares no attribute '{unknown[0]}'. Declared attributes: {', '.join(known)}.")
    chosen = [n for n in RUNGS.list_() if all(getattr(RUNGS.get(n), k) == v for k, v in declared.items())]
    return sorted(chosen, key=lambda n: (RUNGS.get(n).simplicity, n))


__all__ = ["FITTED", "ROLES", "RUNGS", "SEEDINGS", "Context", "Fitted", "Rung", "RungOutput", "strategies"]
