"""Dialects: thin adapters that parse a dialect's shapes, call one service and render."""
