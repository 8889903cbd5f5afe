"""The version of tkr-host (pyproject.toml has the same): a leaf module, so that
plugins.py can name it without importing the package."""

__version__ = "0.1.0"
