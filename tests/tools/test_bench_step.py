"""tools/bench_step.py: kdzoo's step against timm's distillation tasks (fairness checks and the
report's form; its timings are not asserted: they live in docs/results.md)."""
import re

import pytest

from tools import bench_step


def test_a_short_run_prints_the_agreeing_losses_the_three_ratios_and_the_breakdown(tmp_path,
                                                                                     capsys):
    out = tmp_path / 'report.txt'
    bench_step.main(['--repeats', '4', '--batch', '8', '--out', str(out)])
    printed = capsys.readouterr().out
    for name in ('kd', 'feature'):
        found = re.search(rf'^{name}: losses from the same weights \(kdzoo vs timm\): task '
                          r'(\S+) vs (\S+), distill (\S+) vs (\S+); max \|diff\| (\S+)$',
                          printed, re.M)
        assert found and float(found[5]) <= bench_step.TOLERANCE, printed
        assert found[1] == found[2]  # the same student, the same cross-entropy
    for name, peer in (('kd', 'timm'), ('feature', 'timm'), ('student', 'plain')):
        assert re.search(rf'^{name}: kdzoo [\d.]+ ms, {peer} [\d.]+ ms, ratio [\d.]+ ', printed,
                         re.M), printed
    assert 'loss parsing + the one host read' in printed and 'total' in printed
    report = out.read_text()
    assert report.startswith('$ python tools/bench_step.py --repeats 4 --batch 8 --out ')
    assert printed.splitlines()[0] in report


def test_it_never_overwrites_a_report(tmp_path, capsys):
    out = tmp_path / 'report.txt'
    out.write_text('an earlier report')
    with pytest.raises(SystemExit):
        bench_step.main(['--out', str(out)])
    assert 'exists; give a new file' in capsys.readouterr().err
    assert out.read_text() == 'an earlier report'


def test_losses_that_differ_stop_the_comparison():
    with pytest.raises(SystemExit, match=r'kd: the two sides compute different losses \(max '
                                         r'\|diff\| 0.1 > 1e-05\)'):
        bench_step.check_losses('kd', {'task': 1.0, 'distill': 2.0},
                                {'task': 1.0, 'distill': 2.1}, lambda line: None)
