"""Command-line value types of the ``kdzoo`` commands (kdzoo/commands): a config's name
(``kdzoo::`` names resolved); counts and budgets are checked when the command line is parsed, so
``--iters 0`` or a negative value stops at once with argparse's usage line, before anything runs
or is written (0 is not taken as "the default")."""
import argparse
import os

from kdzoo.configs import config_file


def config_name(text):
    """A config: a file path, or a ``scope::path`` name (``kdzoo::quickstart/msdcrd.py``: kdzoo's
    ``configs/quickstart/msdcrd.py``, wherever kdzoo is installed), given as its file's path."""
    try:
        return config_file(text)
    except (OSError, AssertionError, ImportError) as err:  # MMEngine's: no file, unknown scope
        raise argparse.ArgumentTypeError(f'{text}: {err}') from None


def number_at_least(text, low, kind=int):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not {"an integer" if kind is int else "a number"}') from None
    if not value >= low:  # also refuses nan
        raise argparse.ArgumentTypeError(f'{text}: give a number >= {low}')
    return value


def positive_int(text):
    """An integer >= 1."""
    return number_at_least(text, 1)


def non_negative_int(text):
    """An integer >= 0."""
    return number_at_least(text, 0)


def non_negative_float(text):
    """A number of seconds >= 0 (0: no limit)."""
    return number_at_least(text, 0.0, float)


def seed_list(text):
    """Comma-separated distinct integers >= 0."""
    try:
        seeds = [int(s) for s in text.split(',') if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: seeds are integers, e.g. 0,1,2') from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f'{text!r}: give distinct seeds >= 0, e.g. 0,1,2')
    return seeds


def add_launcher(parser, help):
    """``--launcher none|pytorch|slurm`` (``help``: what the others do) and ``--local-rank``
    (given by older launchers; :func:`parsed_launcher` exports it)."""
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help=help)
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)


def parsed_launcher(args):
    """``args`` of a parser with :func:`add_launcher`, ``LOCAL_RANK`` set from them unless set."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
