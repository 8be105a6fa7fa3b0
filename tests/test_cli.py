"""The ``kdzoo`` command (kdzoo/cli.py): ``kdzoo --help`` lists the subcommands, an unknown one is
an error naming them, each subcommand is its kdzoo/commands module (the script in tools/ runs the
same ``main``), and a config given as ``kdzoo::NAME`` is kdzoo's configs/NAME."""
import argparse
import importlib.util
import os
import subprocess
import sys

import pytest

from kdzoo import cli
from kdzoo.configs import ROOT
from kdzoo.experiments import matrix
from kdzoo.experiments.arguments import config_name

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KDZOO = os.path.join(os.path.dirname(sys.executable), 'kdzoo')  # the console script
# the tools/ scripts that are kdzoo subcommands
TOOLS = {'train': 'train', 'test': 'test', 'compare': 'compare', 'analyze': 'analyze',
         'export_student': 'export', 'plug_and_play': 'plug-and-play',
         'quickstart': 'quickstart', 'cache_teacher': 'cache-teacher',
         'make_toy_data': 'make-data'}


def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, cwd='/')


def test_help_lists_every_subcommand_one_line_each():
    out = run(KDZOO, '--help')
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split('subcommands:\n')[1].splitlines()
    assert [line.split()[0] for line in lines] == list(cli.COMMANDS) == [
        'train', 'test', 'compare', 'analyze', 'export', 'plug-and-play', 'quickstart',
        'cache-teacher', 'make-data']
    assert run(sys.executable, '-m', 'kdzoo', '--help').stdout == out.stdout


def test_unknown_or_missing_subcommand_is_an_error_naming_them():
    out = run(KDZOO, 'distil', 'x.py')
    assert out.returncode == 2 and out.stdout == ''
    assert out.stderr.startswith("kdzoo: unknown subcommand 'distil'; choose from train, test, "
                                 'compare, analyze, export, plug-and-play, quickstart, '
                                 'cache-teacher, make-data\n')
    out = run(KDZOO)
    assert out.returncode == 2 and out.stderr.startswith('usage: kdzoo SUBCOMMAND')


@pytest.mark.parametrize('tool', TOOLS)
def test_each_subcommand_is_its_tool(tool, capsys):
    """``kdzoo SUB --help`` is the parser of kdzoo/commands/<module>.py, whose ``main`` the
    script tools/<tool>.py runs."""
    command = TOOLS[tool]
    spec = importlib.util.spec_from_file_location(
        f'tools_{tool}', os.path.join(REPO, 'tools', f'{tool}.py'))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    module = importlib.import_module(f'kdzoo.commands.{cli.COMMANDS[command][0]}')
    assert script.main is module.main
    with pytest.raises(SystemExit) as err:
        cli.main([command, '--help'])
    assert err.value.code == 0
    assert capsys.readouterr().out.startswith(f'usage: kdzoo {command} ')


def test_kdzoo_config_names_are_the_repository_configs():
    path = config_name('kdzoo::quickstart/msdcrd.py')
    assert os.path.samefile(path, os.path.join(REPO, 'configs', 'quickstart', 'msdcrd.py'))
    assert config_name('my/config.py') == 'my/config.py'  # a path: as given
    with pytest.raises(argparse.ArgumentTypeError) as err:
        config_name('kdzoo::quickstart/nope.py')
    assert str(err.value) == (f'kdzoo::quickstart/nope.py: file "{REPO}/kdzoo/.mim/configs/'
                              'quickstart/nope.py" does not exist')
    with pytest.raises(argparse.ArgumentTypeError, match='^mmocr2::x/y.py: mmengine does not '
                       'support to load mmocr2 config'):
        config_name('mmocr2::x/y.py')


def test_a_bad_config_name_stops_at_the_command_line(capsys):
    with pytest.raises(SystemExit) as err:
        cli.main(['train', 'kdzoo::quickstart/nope.py'])
    assert err.value.code == 2
    assert ('kdzoo train: error: argument config: kdzoo::quickstart/nope.py: file '
            in capsys.readouterr().err)


def test_plug_and_play_profiles_name_configs_of_the_package_and_write_here(tmp_path,
                                                                           monkeypatch):
    """The profiles' ``configs/...`` paths are read under kdzoo.configs.ROOT (the checkout here;
    tests/test_wheel.py: the installed package), and the profile's ``out`` is a folder of the
    current directory."""
    assert os.path.samefile(ROOT, REPO)
    monkeypatch.chdir(tmp_path)
    opts = matrix.resolve('smoke', tasks='cls')
    assert opts.out == str(tmp_path / 'results' / 'smoke')
    for configs in opts.task['cls'].pairs.values():
        assert all(os.path.isfile(os.path.join(ROOT, c)) for c in configs)
