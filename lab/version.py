"""lab's version: the one place (pyproject.toml reads it; `lab.__version__` is the same)."""

__version__ = "0.6.0.dev0"
