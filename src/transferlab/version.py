"""The package version, in a module of its own so that parts of the package can name it without
importing ``transferlab`` itself (whose API functions reach the runner)."""

__version__ = "0.1.0"
