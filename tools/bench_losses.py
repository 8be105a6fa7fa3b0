"""Benchmark every kdzoo loss: forward+backward time and peak memory at realistic sizes.

    python tools/bench_losses.py --device cpu|cuda [--quick] [--cases GLOB ...] [--threads N]
                                 [--list]

Cases (``group/loss``), full sizes:

- ``logits``: ``(256, 1000)`` logits (ImageNet batch): KD, DKD, DIST, OFA, DFRA (chunked, the
  loss as shipped) and :func:`direct_dfra_reference`, the textbook DFRA that builds the whole
  ``(B, K, K)`` and ``(K, B, B)`` relation tensors (written here from the formula; it shares no code
  with ``kdzoo.losses.dfra``);
- ``maps14v7``: student ``(32, 512, 14, 14)`` vs teacher ``(32, 512, 7, 7)`` (e.g. a ViT-S/16 grid
  vs a ResNet last stage); ``maps7``: ``(32, 256, 7, 7)`` pairs: MSDCRD, LFCC, MSE, AT, RKD, CWD,
  PKD;
- ``seg``: segmentation logits ``(8, 150, 128, 128)`` (ADE20K): SDD, MSDCRD, CWD, KD on every
  pixel, DFRA on ``max_samples=2048`` sampled pixels (the default 4096 costs 4x as much: the
  sample-wise relation is ``O(K · N²)``; about 110 s on a loaded 2-core CPU, over the budget of
  this script).

Every case runs in a fresh child process (``python tools/bench_losses.py --child CASE``), seeded
with ``torch.manual_seed(0)``. The child builds the inputs, warms the loss up at tiny sizes, then
runs forward+backward once at full size to measure the peak memory above what was resident
before the run:

- CPU: the growth of the child's peak RSS: ``VmHWM`` after the run minus ``VmRSS`` before it, the
  high-water mark being reset to the current RSS first (``/proc/self/clear_refs``; where that is
  not allowed, ``VmHWM`` before the run is the baseline);
- CUDA: ``torch.cuda.max_memory_allocated()`` (reset before the run) minus the memory allocated
  before it.

The time is the median of further runs: 5 when the first run took under 0.5 s, 3 under 5 s, none
above (then the first run is the time; the direct DFRA, ~30 s and ~6.8 GB on CPU, runs once).
``--quick`` uses tiny sizes, one child for all cases, one thread and one timed run each (a smoke
test of seconds; its figures are not meaningful). The DFRA lines compare chunked and direct at
``(256, 1000)`` against the targets of issue 3: peak memory >= 10x lower, time <= 1.5x direct.
"""
import argparse
import fnmatch
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time

# torch is imported inside the functions that run in the child processes: the parent process only
# starts children and prints, so it stays light and holds no memory of its own.

GROUPS = {  # group -> (student shape, teacher shape) at full and --quick sizes
    'logits': dict(full=((256, 1000), (256, 1000)), quick=((8, 10), (8, 10))),
    'maps14v7': dict(full=((32, 512, 14, 14), (32, 512, 7, 7)),
                     quick=((4, 8, 8, 8), (4, 8, 4, 4))),
    'maps7': dict(full=((32, 256, 7, 7), (32, 256, 7, 7)), quick=((4, 6, 4, 4), (4, 6, 4, 4))),
    'seg': dict(full=((8, 150, 128, 128), (8, 150, 128, 128)),
                quick=((2, 5, 16, 16), (2, 5, 16, 16))),
}
MAP_LOSSES = ['MSDCRDLoss', 'LFCCLoss', 'MSELoss', 'ATLoss', 'RKDLoss', 'CWDLoss', 'PKDLoss']
LABELLED = ('DKDLoss', 'OFALoss')  # losses that need target labels
CASES = {  # case id 'group/loss' -> constructor kwargs ('direct_dfra_reference' is defined here)
    **{f'logits/{name}': {} for name in ('KDLoss', 'DKDLoss', 'DISTLoss', 'OFALoss', 'DFRALoss',
                                         'direct_dfra_reference')},
    **{f'{group}/{name}': {} for group in ('maps14v7', 'maps7') for name in MAP_LOSSES},
    **{f'seg/{name}': {} for name in ('SDDLoss', 'MSDCRDLoss', 'CWDLoss', 'KDLoss')},
    'seg/DFRALoss': dict(max_samples=2048),
}
CASE_IDS = list(CASES)
MEMORY_TARGET, TIME_TARGET = 10.0, 1.5  # DFRA: direct/chunked peak memory, chunked/direct time


def direct_dfra_reference(student, teacher, tau=1.0, alpha=2.0):
    """DFRA (arXiv 2502.06189, docs/losses.md) written directly: whole relation tensors, plain
    autograd.

    ``a = z_s / tau``, ``b = z_t / tau`` ``(N, K)``; class-wise relations ``a_n a_nᵀ / √K``
    ``(N, K, K)``, sample-wise relations ``a_:k a_:kᵀ / √K`` ``(K, N, N)``; every row softmaxed,
    ``KL(teacher ‖ student)`` per row, mean over rows; plus ``alpha · mean_n KL`` of the logits.
    """
    import torch.nn.functional as F

    a, b = student / tau, teacher.detach() / tau
    scale = a.shape[1] ** -0.5

    def row_kl(student_logits, teacher_logits):
        log_p = F.log_softmax(student_logits, dim=-1)
        log_q = F.log_softmax(teacher_logits, dim=-1)
        rows = log_p.numel() // log_p.shape[-1]
        return F.kl_div(log_p, log_q, reduction='sum', log_target=True) / rows

    def relations(x):  # (M, D) -> (M, D, D): the outer product of every row with itself
        return scale * x[:, :, None] * x[:, None, :]

    class_wise = row_kl(relations(a), relations(b))
    sample_wise = row_kl(relations(a.t()), relations(b.t()))
    return class_wise + sample_wise + alpha * row_kl(a, b)


# ----------------------------------------------------------------------------------- child side
def proc_status(key):
    """A ``/proc/self/status`` field in MiB (``VmRSS``, ``VmHWM``)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'no {key} in /proc/self/status (the CPU memory figure needs Linux)')


def reset_peak_rss():
    """Set ``VmHWM`` to the current RSS; False where the kernel does not allow it."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


class Memory:
    """Peak memory growth of one run: CPU RSS of this process, or CUDA allocations."""

    def __init__(self, device):
        self.device = device

    def start(self):
        import torch
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.base = proc_status('VmRSS') if reset_peak_rss() else proc_status('VmHWM')

    def peak_mb(self):
        import torch
        if self.device.type == 'cuda':
            return (torch.cuda.max_memory_allocated(self.device) - self.base) / 2 ** 20
        # The kernel's RSS counters lag by up to a few hundred KiB (per-thread caching), so a run
        # that allocates almost nothing can read as a small negative growth: that is zero.
        return max(0.0, proc_status('VmHWM') - self.base)


def make_loss(name, kwargs):
    if name == 'direct_dfra_reference':
        return direct_dfra_reference
    import kdzoo.losses
    return getattr(kdzoo.losses, name)(**kwargs)


def make_inputs(group, size, needs_labels, device):
    """Seeded float32 ``(student requiring grad, teacher, ctx)``; ``ctx`` holds ``target`` labels
    for the losses that need them."""
    import torch
    torch.manual_seed(0)
    random.seed(0)
    s_shape, t_shape = GROUPS[group][size]
    student = torch.randn(s_shape, device=device).requires_grad_(True)
    teacher = torch.randn(t_shape, device=device).mul_(2)
    ctx = {}
    if needs_labels:
        ctx['target'] = torch.randint(0, s_shape[1], s_shape[:1], device=device)
    return student, teacher, ctx


def forward_backward(loss, student, teacher, ctx):
    """One timed step; returns ``(seconds, loss value)``."""
    import torch
    student.grad = None
    if student.device.type == 'cuda':
        torch.cuda.synchronize(student.device)
    start = time.perf_counter()
    value = loss(student, teacher, **ctx)
    value.backward()
    value = value.item()  # synchronises CUDA
    return time.perf_counter() - start, value


def repeats_after(first_seconds, size):
    """Timed runs after the first one: more for fast cases, none for slow ones, one when quick."""
    if size == 'quick':
        return 1
    return 5 if first_seconds < 0.5 else 3 if first_seconds < 5 else 0


def run_case(case_id, size, device):
    """Measure one case in this process; returns a result dict (JSON-able)."""
    import torch
    group, name = case_id.split('/')
    needs_labels = name in LABELLED
    loss = make_loss(name, CASES[case_id])
    device = torch.device(device)
    forward_backward(loss, *make_inputs(group, 'quick', needs_labels, device))  # library warm-up
    student, teacher, ctx = make_inputs(group, size, needs_labels, device)
    memory = Memory(device)
    memory.start()
    first, value = forward_backward(loss, student, teacher, ctx)
    peak = memory.peak_mb()
    times = [forward_backward(loss, student, teacher, ctx)[0]
             for _ in range(repeats_after(first, size))]
    return dict(case=case_id, loss=name, args=CASES[case_id], student=list(student.shape),
                teacher=list(teacher.shape), runs=max(len(times), 1),
                ms=1000 * statistics.median(times or [first]), first_ms=1000 * first,
                peak_mb=peak, value=value)


def environment(device):
    import torch
    if device == 'cuda':
        name = torch.cuda.get_device_name()
    else:
        from kdzoo.experiments.timing import cpu_model
        name = cpu_model()
    return dict(torch=torch.__version__, device=f'{device} ({name})',
                threads=torch.get_num_threads(), python=platform.python_version())


def child_main(case_ids, size, device, threads):
    """Run the cases in this process, one JSON line each (``env`` first)."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    print(json.dumps(dict(env=environment(device))), flush=True)
    for case_id in case_ids:
        print(json.dumps(run_case(case_id, size, device)), flush=True)


# ---------------------------------------------------------------------------------- parent side
def run_in_child(case_ids, size, device, threads):
    """Run ``case_ids`` in one fresh Python process; returns ``(env, [results])``."""
    cmd = [sys.executable, os.path.abspath(__file__), '--child', *case_ids, '--size', size,
           '--device', device, '--threads', str(threads or 0)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f'{" ".join(case_ids)} failed (exit {out.returncode}):\n{out.stderr}')
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{')]
    return lines[0]['env'], lines[1:]


def select(patterns):
    """Case ids matching any glob pattern, tried on the id (``seg/KDLoss``) and the loss name."""
    if not patterns:
        return list(CASE_IDS)
    chosen = [case for case in CASE_IDS if any(
        fnmatch.fnmatch(case, p) or fnmatch.fnmatch(case.split('/')[1], p) for p in patterns)]
    if not chosen:
        raise SystemExit(f'no case matches {patterns}; cases: {", ".join(CASE_IDS)}')
    return chosen


def shape(dims):
    return 'x'.join(str(d) for d in dims)


def table(results):
    lines = ['| case | loss | args | student | teacher | runs | fwd+bwd ms (median) | peak MB '
             '| loss value |', '|---|---|---|---|---|---:|---:|---:|---:|']
    for r in results:
        args = ', '.join(f'{k}={v}' for k, v in r['args'].items())
        lines.append(f"| {r['case']} | {r['loss']} | {args} | {shape(r['student'])} "
                     f"| {shape(r['teacher'])} | {r['runs']} | {r['ms']:.1f} | {r['peak_mb']:.1f} "
                     f"| {r['value']:.6g} |")
    return '\n'.join(lines)


def dfra_verdict(results, quick):
    """The chunked / direct DFRA ratios at the logits size, with the issue's targets."""
    by_case = {r['case']: r for r in results}
    chunked, direct = by_case.get('logits/DFRALoss'), by_case.get('logits/direct_dfra_reference')
    if not (chunked and direct):
        return ['DFRA chunked vs direct: not run (select logits/DFRALoss and '
                'logits/direct_dfra_reference)']
    memory = direct['peak_mb'] / max(chunked['peak_mb'], 1e-6)
    speed = chunked['ms'] / direct['ms']
    cold = chunked['first_ms'] / direct['first_ms']

    def judge(ok):
        return '(quick sizes: not judged)' if quick else 'PASS' if ok else 'FAIL'

    return [
        f"DFRA chunked vs direct at {shape(chunked['student'])}: value {chunked['value']:.6g} vs "
        f"{direct['value']:.6g}",
        f'- peak memory: direct / chunked = {memory:.1f}x (target >= {MEMORY_TARGET:g}x) '
        f'{judge(memory >= MEMORY_TARGET)}',
        f'- time: chunked / direct = {speed:.2f}x (target <= {TIME_TARGET:g}x) '
        f'{judge(speed <= TIME_TARGET)}; first runs only: {cold:.2f}x',
    ]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--quick', action='store_true', help='tiny sizes, one child: a smoke test')
    parser.add_argument('--cases', nargs='+', metavar='GLOB',
                        help='case ids or loss names (globs), e.g. "logits/*" DFRALoss')
    parser.add_argument('--threads', type=int,
                        help="torch CPU threads (default: torch's default; 1 with --quick)")
    parser.add_argument('--list', action='store_true', help='print the case ids and exit')
    parser.add_argument('--child', nargs='+', help=argparse.SUPPRESS)
    parser.add_argument('--size', choices=('full', 'quick'), default='full', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, args.size, args.device, args.threads)
    if args.list:
        return print('\n'.join(CASE_IDS))
    start = time.perf_counter()
    case_ids = select(args.cases)
    if args.quick:
        env, results = run_in_child(case_ids, 'quick', args.device, args.threads or 1)
    else:
        env, results = None, []
        for case_id in case_ids:
            env, result = run_in_child([case_id], 'full', args.device, args.threads)
            results += result
            print(f"  {case_id}: {result[0]['ms']:.1f} ms, {result[0]['peak_mb']:.1f} MB",
                  file=sys.stderr, flush=True)
    print(f"torch {env['torch']} | device {env['device']} | threads {env['threads']} | "
          f"python {env['python']} | sizes {'quick' if args.quick else 'full'}\n")
    print(table(results) + '\n')
    print('\n'.join(dfra_verdict(results, args.quick)))
    print(f'\ntotal {time.perf_counter() - start:.1f} s')
    bad = [r['case'] for r in results
           if not all(math.isfinite(r[key]) for key in ('ms', 'peak_mb', 'value'))]
    if bad:
        raise SystemExit(f'non-finite results: {bad}')


if __name__ == '__main__':
    main()
