"""``python -m pipeline`` is the ``demandflow`` command."""

from pipeline.cli import main

main()
