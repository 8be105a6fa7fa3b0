"""The README's main job, shrunk to seconds: generate data, train teacher, student, distilled."""
import math

from tools import quickstart


def test_quickstart_fast_prints_the_table(tmp_path, capsys):
    rows = quickstart.main(['--fast', '--mldr', '--data-dir', str(tmp_path / 'data'),
                            '--work-dir', str(tmp_path / 'work')])
    out = capsys.readouterr().out
    assert [r[0] for r in rows] == ['teacher', 'student alone', 'student + MSDCRD',
                                    'student + MLDR-KD']
    assert all(0.0 <= r[3] <= 100.0 and math.isfinite(r[4]) for r in rows)
    assert '| run | model | iterations | val top-1 (%) | wall time (s) |' in out
    for row in rows:
        assert f'| {row[0]} | {row[1]} |' in out
    assert 'MSDCRD: ' in out and 'MLDR-KD: ' in out
    assert (tmp_path / 'data' / 'train').is_dir() and (tmp_path / 'work' / 'teacher').is_dir()


def test_verdict_names_gains_losses_and_differences_too_small_for_one_seed():
    assert quickstart.verdict(9.0).startswith('helped: +9.0 points')
    assert quickstart.verdict(0.4).startswith('no clear effect in this budget: +0.4 points')
    assert quickstart.verdict(-1.5).startswith('no clear effect')
    assert quickstart.verdict(-3.0).startswith('did not help in this budget: -3.0 points')
