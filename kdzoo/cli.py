"""The ``kdzoo`` command (setup.py's console script; ``python -m kdzoo`` too):
``kdzoo SUBCOMMAND [options]`` runs ``kdzoo.commands.<module>.main`` with the options, which are
that command's own (``kdzoo SUBCOMMAND --help``; each module's docstring says the rest). ``kdzoo
--help`` lists the subcommands; it imports none of them.
"""
import importlib
import sys

# subcommand -> (its module in kdzoo/commands, the line kdzoo --help shows)
COMMANDS = {
    'train': ('train', 'train a config; with distill_cfg, distil its student'),
    'test': ('test', 'evaluate a checkpoint\'s student on the config\'s test set'),
    'compare': ('compare', 'did distillation help? student alone vs distilled, paired over seeds'),
    'analyze': ('analyze', 'teacher x student stage similarity (CKA) and suggested distill items'),
    'export': ('export', 'write the student alone (and an ONNX graph checked against PyTorch)'),
    'plug-and-play': ('plug_and_play', 'the matrix: task x pair x loss x seed on generated data'),
    'quickstart': ('quickstart', 'generated data, teacher, student alone and distilled: minutes '
                   'on a CPU'),
    'cache-teacher': ('cache_teacher', 'fill a teacher-output cache ahead of training'),
    'make-data': ('make_data', 'write a generated data set (cls, seg or det; no download)'),
}


def usage():
    width = max(map(len, COMMANDS))
    lines = [f'  {name:{width}}  {line}' for name, (_, line) in COMMANDS.items()]
    return ('usage: kdzoo SUBCOMMAND [options]   (kdzoo SUBCOMMAND --help: its options)\n\n'
            'subcommands:\n' + '\n'.join(lines))


def main(argv=None):
    """Run ``kdzoo SUBCOMMAND [options]`` (``argv``: the words after ``kdzoo``); the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    if argv[0] in ('-h', '--help'):
        print(usage())
        return 0
    command, options = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f'kdzoo: unknown subcommand {command!r}; choose from {", ".join(COMMANDS)}\n\n'
              + usage(), file=sys.stderr)
        return 2
    importlib.import_module(f'kdzoo.commands.{COMMANDS[command][0]}').main(options)
    return 0
