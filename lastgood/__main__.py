"""``python -m lastgood``: the same entry as the ``lastgood`` command."""

from lastgood.cli.fast import main

main()
