"""Smoke test of tools/bench_losses.py: the --quick run covers every loss with finite figures."""
import math
import os.path as osp
import subprocess
import sys

import kdzoo.losses

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_quick_cpu_run_reports_every_loss_with_finite_numbers():
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'bench_losses.py'), '--device', 'cpu', '--quick']
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [line.strip('|').split('|') for line in out.stdout.splitlines()
            if line.startswith('| ') and not line.startswith('| case')]
    by_loss, values = {}, {}
    for case, loss, _args, _s, _t, runs, ms, peak_mb, value in (map(str.strip, r) for r in rows):
        by_loss.setdefault(loss, []).append(case)
        values[case] = float(value)
        numbers = [float(runs), float(ms), float(peak_mb), float(value)]
        assert all(math.isfinite(x) for x in numbers), (case, numbers)
        assert float(runs) >= 1 and float(ms) > 0 and float(peak_mb) >= 0
    assert set(kdzoo.losses.__all__) <= set(by_loss), set(kdzoo.losses.__all__) - set(by_loss)
    assert math.isclose(values['logits/DFRALoss'], values['logits/direct_dfra_reference'],
                        rel_tol=1e-4)  # the bench's direct DFRA computes the same loss
    assert 'DFRA chunked vs direct' in out.stdout and 'threads 1' in out.stdout
