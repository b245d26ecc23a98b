"""The one place the kmesh version is written."""

__version__ = "0.1.0"
