"""``python -m kdzoo SUBCOMMAND ...``: the ``kdzoo`` command (:mod:`kdzoo.cli`)."""
import sys

from kdzoo.cli import main

if __name__ == '__main__':
    sys.exit(main())
