"""LLM providers, one module each, behind the `Provider` protocol in `base.py`."""
