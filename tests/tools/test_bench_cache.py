"""tools/bench_cache.py: its step comparison runs end to end and finds the read run equal to the
live one; its matrix estimate is the arithmetic it states."""
import csv

import pytest

from tools.bench_cache import main


def test_step_reads_the_cache_and_ends_as_the_live_run(capsys):
    assert main(['step', '--iters', '2', '--batch', '4']) == 0
    out = capsys.readouterr().out
    assert 'read run == live run (student state dict, bit for bit): True' in out
    assert 'reading cache' in out and '/ alone' in out


def write_csv(path, rows):
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_the_matrix_estimate_skips_the_teacher_of_every_arm_but_the_first(tmp_path, capsys):
    row = dict(task='cls', pair='p', seed='0', budget='10it', iters='10', timed='after training')
    rows = [dict(row, loss='none', train_s='60', teacher_forward_s='', finished='1'),
            dict(row, loss='KD', train_s='120', teacher_forward_s='3', finished='2'),
            dict(row, loss='DKD', train_s='120', teacher_forward_s='3', finished='3'),
            dict(row, loss='KD', seed='1', train_s='120', teacher_forward_s='3', finished='4')]
    write_csv(tmp_path / 'm.csv', rows)
    assert main(['matrix', str(tmp_path / 'm.csv')]) == 0
    # 420 s trained; the DKD arm (second of seed 0) would skip 10 x 3 s of teacher
    assert '4 runs trained in 7.0 min; with one cache per (task, pair, seed, budget) about ' \
           '6.5 min (0.5 min of teacher forward passes not run' in capsys.readouterr().out


def test_the_matrix_estimate_refuses_rows_that_used_the_cache(tmp_path):
    from kdzoo.experiments.matrix_report import CACHED_RUN
    write_csv(tmp_path / 'm.csv', [dict(task='cls', pair='p', seed='0', budget='b', iters='1',
                                        loss='KD', train_s='1', teacher_forward_s='1',
                                        timed=CACHED_RUN)])
    with pytest.raises(SystemExit, match='used the teacher cache'):
        main(['matrix', str(tmp_path / 'm.csv')])
