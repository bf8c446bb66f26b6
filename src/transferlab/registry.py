"""One small string-keyed registry per extension point (backbone sources, rungs, ...).

Adding a capability is one file plus one ``@REGISTRY.register("name")``; a duplicate name fails
at import time rather than silently replacing the earlier entry.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import TransferlabError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise RuntimeError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register an entry take it out again)."""
        if name not in self._entries:
            raise KeyError(f"{self.kind} '{name}' is not registered")
        del self._entries[name]

    def list_(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise TransferlabError(
                f"Unknown {self.kind} '{name}'. Known {self.kind}s: {', '.join(self.list_())}."
            ) from None

    def __contains__(self, name: str) -> bool:
        return name in self._entries
