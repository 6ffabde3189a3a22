"""Embedders: text to unit vectors, behind one small Protocol (see base.py)."""
