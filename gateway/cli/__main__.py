"""``python -m gateway.cli``: the ``gateway`` command."""

from gateway.cli import main

main()
