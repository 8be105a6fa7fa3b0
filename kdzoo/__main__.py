"""``python -m kdzoo SUBCOMMAND ...``: the ``kdzoo`` command (:mod:`kdzoo.cli`)."""
import sys

from kdzoo.cli import main

sys.exit(main())
