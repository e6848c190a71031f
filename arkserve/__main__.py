"""``python -m arkserve`` is the ``arkserve`` command."""

from arkserve.cli.main import main

main()
