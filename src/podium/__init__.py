"""Podium: a self-hosted AI agent server with one core and several API dialects."""

__version__ = "0.1.0"
__all__ = ["__version__"]
