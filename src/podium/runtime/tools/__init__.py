"""Tools agents can call: the registry in `base.py`, built-ins one module per family."""
