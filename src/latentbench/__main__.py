"""``python -m latentbench`` runs the command line."""

from latentbench.cli import app

app(prog_name="latentbench")
