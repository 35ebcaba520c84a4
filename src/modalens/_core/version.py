"""The package version, in a leaf module so that every room can read it without importing the root package."""

__version__ = "0.1.0"
