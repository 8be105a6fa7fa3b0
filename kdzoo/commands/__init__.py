"""The implementations of the ``kdzoo`` subcommands (:mod:`kdzoo.cli`), one module each with
``main(argv=None)``; the scripts in a checkout's ``tools/`` call the same ``main``."""
