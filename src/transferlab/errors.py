"""transferlab's own exceptions.

Every user-facing error names the thing, the place, what was expected, what was found and the
fix. They subclass the built-ins so callers can catch them naturally (``except ValueError``);
the CLI turns them into a one-line message and exit code 2.
"""

from __future__ import annotations


class TransferlabError(ValueError):
    """A mistake in the user's input, data or arguments: fixable by the user."""


class DataError(TransferlabError):
    """The data cannot be read or does not have the expected shape (file, row, column...)."""


class ConfigError(TransferlabError):
    """A setting of the run spec is invalid."""


class BackboneError(TransferlabError):
    """A backbone name cannot be resolved or its weights cannot be loaded."""


class ArtifactError(TransferlabError):
    """A fitted model cannot be saved in a loadable form, exported, or loaded from its folder."""


class MissingDependencyError(TransferlabError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


def require(module: str, extra: str):
    """Import an optional dependency, or fail naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"This feature needs the Python package '{module}', which is not installed. "
            f'Install it with: pip install "transferlab[{extra}]"'
        ) from exc
