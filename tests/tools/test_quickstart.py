"""The README's main job, shrunk to seconds: generate data, train teacher, student, distilled."""
import math

from kdzoo.commands import quickstart
from kdzoo.experiments.timing import cpu_model


def test_quickstart_fast_prints_the_table(tmp_path, capsys):
    rows = quickstart.main(['--fast', '--data-dir', str(tmp_path / 'data'),
                            '--work-dir', str(tmp_path / 'work')])
    out = capsys.readouterr().out
    assert [r[0] for r in rows] == ['teacher', 'student alone', 'student + MSDCRD',
                                    'student + LFCC', 'student + MLDR-KD']
    assert all(0.0 <= r[3] <= 100.0 and math.isfinite(r[4]) for r in rows)
    assert '| run | model | iterations | val top-1 (%) | wall time (s) |' in out
    for row in rows:
        assert f'| {row[0]} | {row[1]} |' in out
    for label, config in (('MSDCRD', 'msdcrd'), ('LFCC', 'lfcc'), ('MLDR-KD', 'mldrkd')):
        assert f'{label}: one seed: cannot tell (' in out
        assert f'over seeds: kdzoo compare kdzoo::quickstart/{config}.py --seeds 0,1,2).' in out
    # under the table, the CPU model the digits belong to
    table_end = out.index(f'| {rows[-1][0]} |')
    assert out.index(f'CPU: {cpu_model()}. Seeded runs repeat bit for bit') > table_end
    assert (tmp_path / 'data' / 'train').is_dir() and (tmp_path / 'work' / 'teacher').is_dir()


def test_result_is_stated_with_the_engines_rule_gain_shown():
    # one seed: the engine's verdict (kdzoo.experiments.stats) cannot tell, whatever the gain
    for gain, shown in ((9.0, '+9.0'), (0.4, '+0.4'), (-3.0, '-3.0')):
        line = quickstart.result_line('MSDCRD', gain, 'msdcrd')
        assert line.startswith(f'MSDCRD: one seed: cannot tell ({shown} points vs the student')
