"""`python -m podium` runs the CLI."""

from podium.cli import app

app()
