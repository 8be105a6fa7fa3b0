"""kdzoo's training step against the plainest loops: timm's own distillation tasks, side by side.

    python tools/bench_step.py [--device cpu|cuda] [--repeats 40] [--batch 64] [--threads N]
                               [--student CONFIG] [--teacher CONFIG] [--load K] [--out FILE]

The peer is ``timm.task`` (timm 1.0.31): ``LogitDistillationTask`` (the student's forward and
cross-entropy, the teacher's no-grad forward on its own normalisation, KL at a temperature) and
``FeatureDistillationTask`` (the pooled pre-logits features, MSE through a learned ``nn.Linear``
projection), driven by the loop a user writes by hand: ``out = task(x, y)``,
``out['loss'].backward()``, ``optimizer.step()``, ``optimizer.zero_grad()`` and
``out['loss'].item()`` (timm's train script reads the loss every step; kdzoo's step reads its
logged values once too).

Both sides get the same modules (copies of one randomly initialised student and teacher: the
quick-start teacher and plain-ViT student by default, ``configs/quickstart/teacher.py`` and
``student_plain_vit.py``: a resnet10t and a ViT at 32 px), the same optimizer and hyper-parameters
(the student config's ``optim_wrapper``: AdamW, lr, weight decay), the same batch (random
``[0, 255]`` images and labels, on the host, moved to the device inside the step by each side:
kdzoo's data preprocessor, timm's ``to`` + the normalisation its loader applies) and the same
number of interleaved repetitions (the order alternates); the median of each side is printed, with
the ratio:

- ``kd``: kdzoo's ``DistillClassifier.train_step`` (KDLoss at tau 4 on the logits, the monitor
  on, MMEngine's ``OptimWrapper``) against ``LogitDistillationTask(temperature=4)``;
- ``feature``: kdzoo's MSELoss on the ``pre_logits`` readouts through a ``Projector``
  (``norm=False``, initialised from timm's projection) against ``FeatureDistillationTask``;
- ``student``: the student's own ``train_step`` (MMEngine) against the plain PyTorch loop.

Before timing, each comparison checks that both sides compute the same losses from the same
weights (exit status 1 when they differ by more than 1e-5). After it, a breakdown times, on the
kd step's own tensors, each piece of work kdzoo does that the plain loop does not (data
preprocessor, taps, teacher-input check, readout bookkeeping, label context, loss call, finiteness
flags, monitor, loss parsing with the step's one host read, MMEngine's optimizer wrapper and
``train_step`` frame).

``--load K`` runs K busy processes (single-threaded matrix products) during the timing: the
ratio under load. ``--out FILE`` also writes the report there (never over an existing file).
The figures are meaningful on an otherwise idle machine: the 1-minute load per core is printed
before and after. Runs in about a minute on 2 CPU cores.
"""
import argparse
import copy
import multiprocessing
import os
import platform
import statistics
import sys
import time
import warnings

import torch
import torch.nn.functional as F

TOLERANCE = 1e-5  # losses of the two sides from the same weights and batch


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed_once(fn, device):
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleaved(fns, repeats, device, warmup=5):
    """Median seconds of each of ``fns`` (a dict), timed in turn ``repeats`` times, the order
    alternating every repetition, after ``warmup`` untimed calls each; also the quartiles."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    names = list(fns)
    for rep in range(repeats):
        for name in (names if rep % 2 == 0 else names[::-1]):
            times[name].append(timed_once(fns[name], device))
    return {name: (statistics.median(t), *statistics.quantiles(t, n=4)[::2])
            for name, t in times.items()}


def median_time(fn, repeats, device):
    return interleaved({'x': fn}, repeats, device, warmup=3)['x'][0]


# ------------------------------------------------------------------------------- the two sides
def build_classifier(model_cfg):
    from kdzoo.registry import build
    return build(copy.deepcopy(model_cfg))


def timm_copy(classifier):
    """A copy of a ``TimmClassifier``'s timm model whose ``pretrained_cfg`` mean / std are the ones
    the classifier normalises with (timm's tasks read them there to convert the student's inputs
    to the teacher's normalisation; a randomly initialised timm model's own cfg may name others,
    e.g. 0.5 for ViTs, where kdzoo uses ImageNet's)."""
    model = copy.deepcopy(classifier.model)
    model.pretrained_cfg = dict(model.pretrained_cfg,
                                mean=tuple((classifier.mean.flatten().cpu() / 255).tolist()),
                                std=tuple((classifier.std.flatten().cpu() / 255).tolist()))
    return model


def kdzoo_model(student, teacher, item, connectors=None):
    from kdzoo.adapters.cls import DistillClassifier
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # a teacher without a checkpoint: random weights
        return DistillClassifier(student=copy.deepcopy(student),
                                 distill_cfg=dict(teacher=copy.deepcopy(teacher), losses=[item],
                                                  connectors=connectors))


def optimizer_of(optim_cfg, params):
    """The config's optimizer (type and settings) as a plain torch optimizer over ``params``."""
    cfg = dict(optim_cfg['optimizer'])
    return getattr(torch.optim, cfg.pop('type'))(params, **cfg)


class Batch:
    """One batch on the host: uint8 ``[0, 255]`` images and labels."""

    def __init__(self, batch, size, classes, device, mean, std):
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8,
                                    generator=generator)
        self.labels = torch.randint(0, classes, (batch,), generator=generator)
        self.device = device
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)

    def kdzoo(self):
        return dict(inputs=self.images, data_samples=self.labels)

    def timm(self):
        """What timm's loader hands the task: on the device, float, normalised."""
        x = self.images.to(self.device, non_blocking=True).float()
        return (x - self.mean) / self.std, self.labels.to(self.device, non_blocking=True)


def timm_step(task, optimizer, batch):
    def step():
        x, y = batch.timm()
        out = task(x, y)
        out['loss'].backward()
        optimizer.step()
        optimizer.zero_grad()
        return out['loss'].item()
    return step


def plain_student_step(model, optimizer, batch):
    def step():
        x, y = batch.timm()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()
    return step


def mmengine_step(model, optim_wrapper, batch):
    return lambda: model.train_step(batch.kdzoo(), optim_wrapper)


def check_losses(name, kdzoo_losses, timm_losses, report):
    """``{label: (kdzoo value, timm value)}`` printed; a difference over TOLERANCE exits 1."""
    worst = max(abs(a - b) for a, b in zip(kdzoo_losses.values(), timm_losses.values()))
    pairs = ', '.join(f'{label} {a:.6f} vs {b:.6f}' for (label, a), b in
                      zip(kdzoo_losses.items(), timm_losses.values()))
    report(f'{name}: losses from the same weights (kdzoo vs timm): {pairs}; max |diff| '
           f'{worst:.1e}')
    if not worst <= TOLERANCE:
        raise SystemExit(f'{name}: the two sides compute different losses (max |diff| '
                         f'{worst:.3g} > {TOLERANCE:g}): the comparison would not be fair')


def first_losses(model, task, batch):
    """The losses of both sides on the batch, before any update."""
    data = model.data_preprocessor(batch.kdzoo(), True)
    with torch.no_grad():
        losses = model.parse_losses(model(**data, mode='loss'))[1]
        out = task(*batch.timm())
    distill = next(k for k in losses if k.startswith('distill.loss_'))
    return ({'task': losses['loss_cls'], 'distill': losses[distill]},
            {'task': out['task_loss'].item(), 'distill': out['kd_loss'].item()})


def compare_kd(setup, report):
    from timm.task import LogitDistillationTask
    item = dict(student='logits', teacher='logits', loss=dict(type='KDLoss', tau=4.0))
    model = kdzoo_model(setup.student, setup.teacher, item).to(setup.device).train()
    task = LogitDistillationTask(
        student_model=timm_copy(model.student), teacher_model=timm_copy(model.teacher),
        criterion=torch.nn.CrossEntropyLoss(),
        temperature=4.0, distill_loss_weight=1.0, task_loss_weight=1.0, device=setup.device,
        verbose=False).train()
    check_losses('kd', *first_losses(model, task, setup.batch), report)
    return model, task


def compare_feature(setup, report):
    from timm.task import FeatureDistillationTask

    from kdzoo.connectors.projector import Projector
    task = FeatureDistillationTask(
        student_model=timm_copy(setup.student), teacher_model=timm_copy(setup.teacher),
        criterion=torch.nn.CrossEntropyLoss(),
        distill_loss_weight=1.0, task_loss_weight=1.0, device=setup.device,
        verbose=False).train()
    linear = task.trainable_module.projection
    projector = Projector(linear.in_features, linear.out_features, norm=False)
    with torch.no_grad():
        projector.conv.weight.copy_(linear.weight[:, :, None, None])
        projector.conv.bias.copy_(linear.bias)
    item = dict(student='pre_logits', teacher='pre_logits', loss=dict(type='MSELoss'),
                connector='proj')
    model = kdzoo_model(setup.student, setup.teacher, item,
                        connectors=dict(proj=projector)).to(setup.device).train()
    check_losses('feature', *first_losses(model, task, setup.batch), report)
    return model, task


def ratio_line(name, times, ours, peer, peer_name):
    (a, a25, a75), (b, b25, b75) = times[ours], times[peer]
    return (f'{name}: kdzoo {1000 * a:.1f} ms, {peer_name} {1000 * b:.1f} ms, ratio {a / b:.3f}'
            f'   (quartiles kdzoo {1000 * a25:.1f}-{1000 * a75:.1f}, {peer_name} '
            f'{1000 * b25:.1f}-{1000 * b75:.1f} ms)')


# ------------------------------------------------------------------------------- the breakdown
def breakdown(setup, model, report):
    """Each piece of kdzoo's own work in the kd step, timed alone on that step's tensors."""
    from mmengine.optim import OptimWrapper

    from kdzoo.monitor import monitor_values
    from kdzoo.teacher_names import SINGLE
    device, repeats = setup.device, setup.repeats
    data = model.data_preprocessor(setup.batch.kdzoo(), True)
    inputs, labels = data['inputs'], data['data_samples']
    with model.distiller.step():
        losses, student, teacher = model.recorded_step(inputs, labels)
        distill = model.distiller.distill_losses(student, teacher, iteration=0,
                                                 defer_checks=True,
                                                 **model.label_context(labels))
    model.distiller.finite_checks.clear()
    losses = dict(losses, **monitor_values(losses, distill, student, teacher), **distill)
    item = model.distiller.items[0]
    loss_fn = model.distiller.losses[item.name]
    s_logits = student['logits'].detach().requires_grad_()
    t_logits = teacher[SINGLE]['logits']

    def kdzoo_loss():
        loss_fn(s_logits, t_logits, **model.label_context(labels)).backward()

    def inline_kl():  # timm's LogitDistillationTask
        log_s = F.log_softmax(s_logits / 4.0, dim=-1)
        log_t = F.log_softmax(t_logits / 4.0, dim=-1)
        (F.kl_div(log_s, log_t, reduction='batchmean', log_target=True) * 16.0).backward()

    def flags():
        checks = model.distiller.finite_checks
        checks.add({'teacher': [t_logits], 'student': [student['logits']],
                    'loss': distill[f'distill.loss_{item.name}']}, 'timing')
        checks.clear()

    def parse():
        model.parse_losses(losses)

    def readout_bookkeeping():  # forward_readouts without the network: names, dict, stages
        list(dict.fromkeys(model.student_names))
        [n for n in model.student_names if n.startswith('stage')]

    weight = torch.zeros(1, device=device, requires_grad=True)
    plain_opt = optimizer_of(setup.optim_cfg, [weight])
    wrapper = OptimWrapper(optimizer_of(setup.optim_cfg, [weight]))

    def wrapped_update():
        wrapper.update_params(weight.sum())

    def plain_update():
        weight.sum().backward()
        plain_opt.step()
        plain_opt.zero_grad()

    def frame():
        with wrapper.optim_context(model):
            pass

    def taps():
        with model.distiller.step():
            pass

    pieces = {
        'data preprocessor (cast, to device)': lambda: model.data_preprocessor(
            setup.batch.kdzoo(), True),
        'taps (step context, both models)': taps,
        'teacher inputs (normalisation check)': lambda: model.teacher_inputs(inputs),
        'readout bookkeeping': readout_bookkeeping,
        'iteration + label context': lambda: (model.iteration(), model.label_context(labels)),
        'finiteness flags (on the device)': flags,
        'monitor (ratio, agreement)': lambda: monitor_values(losses, distill, student, teacher),
        'loss parsing + the one host read': parse,
    }
    rows = [(name, median_time(fn, repeats, device)) for name, fn in pieces.items()]
    kd = interleaved({'kdzoo': kdzoo_loss, 'inline': inline_kl}, repeats, device)
    rows.append(('KDLoss call - inline KL (fwd+bwd)', kd['kdzoo'][0] - kd['inline'][0]))
    update = interleaved({'wrapped': wrapped_update, 'plain': plain_update}, repeats, device)
    rows.append(('OptimWrapper.update_params - plain calls', update['wrapped'][0]
                 - update['plain'][0]))
    rows.append(('train_step frame (optim_context)', median_time(frame, repeats, device)))
    report("kdzoo's own work in the kd step, each piece timed alone (median of "
           f'{repeats}; a difference can be below 0 within the noise):')
    for name, seconds in rows:
        report(f'  {name:<45} {1000 * seconds:8.3f} ms')
    report(f"  {'total':<45} {1000 * sum(s for _, s in rows):8.3f} ms")


# ------------------------------------------------------------------------------- background load
def burn(stop):
    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    while not stop.is_set():
        a = (a @ a).tanh_()


class Load:
    """``k`` busy processes while inside."""

    def __init__(self, k):
        self.k = k

    def __enter__(self):
        context = multiprocessing.get_context('fork')
        self.stop = context.Event()
        self.processes = [context.Process(target=burn, args=(self.stop,), daemon=True)
                          for _ in range(self.k)]
        for p in self.processes:
            p.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for p in self.processes:
            p.join()


# ----------------------------------------------------------------------------------------- main
class Setup:
    def __init__(self, args):
        from mmengine.config import Config

        import kdzoo.adapters.cls  # noqa: F401  (registers TimmClassifier, DistillClassifier)
        import kdzoo.losses  # noqa: F401  (registers the losses)
        self.device = torch.device(args.device)
        self.repeats = args.repeats
        student_cfg, teacher_cfg = Config.fromfile(args.student), Config.fromfile(args.teacher)
        self.optim_cfg = student_cfg.optim_wrapper
        extra = sorted(set(self.optim_cfg) - {'type', 'optimizer'})
        if self.optim_cfg.get('type', 'OptimWrapper') != 'OptimWrapper' or extra:
            raise SystemExit(
                f'{args.student}: optim_wrapper {dict(self.optim_cfg)} has settings the plain '
                f'loops do not have ({extra or self.optim_cfg["type"]}): the comparison needs a '
                'plain OptimWrapper with an optimizer (type and its own arguments only)')
        torch.manual_seed(0)
        self.student = build_classifier(student_cfg.model).to(self.device)
        self.teacher = build_classifier(teacher_cfg.model).to(self.device)
        size = student_cfg.model.get('img_size') or 32
        self.batch = Batch(args.batch, size, student_cfg.model.num_classes, self.device,
                           self.student.mean.flatten().tolist(),
                           self.student.std.flatten().tolist())  # [0, 255] units


def environment(device):
    import timm
    if device.type == 'cuda':
        name = torch.cuda.get_device_name(device)
    else:
        from kdzoo.experiments.timing import cpu_model
        name = cpu_model()
    return (f'torch {torch.__version__} | timm {timm.__version__} | device {device.type} '
            f'({name}) | threads {torch.get_num_threads()} | python {platform.python_version()}')


def load_per_core():
    return os.getloadavg()[0] / (os.cpu_count() or 1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--repeats', type=int, default=40)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--threads', type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument('--student', default='configs/quickstart/student_plain_vit.py')
    parser.add_argument('--teacher', default='configs/quickstart/teacher.py')
    parser.add_argument('--load', type=int, default=0, metavar='K',
                        help='K busy processes during the timing')
    parser.add_argument('--out', help='also write the report to this file (a new file)')
    args = parser.parse_args(argv)
    if args.repeats < 4:
        parser.error('--repeats must be at least 4 (quartiles are printed)')
    if args.out and os.path.exists(args.out):
        parser.error(f'--out {args.out} exists; give a new file (it is never overwritten)')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available to torch')
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lines = []

    def report(line):
        print(line, flush=True)
        lines.append(line)

    start = time.perf_counter()
    setup = Setup(args)
    report(environment(setup.device))
    report(f'pair: student {args.student}, teacher {args.teacher}; batch {args.batch}; '
           f'{args.repeats} interleaved repetitions, median; background load: {args.load} '
           f'busy processes; load per core before: {load_per_core():.2f}')
    kd_model, kd_task = compare_kd(setup, report)
    feature_model, feature_task = compare_feature(setup, report)
    alone = copy.deepcopy(setup.student).train()
    plain = copy.deepcopy(setup.student.model).train()
    from mmengine.optim import build_optim_wrapper
    steps = {
        'kd/kdzoo': mmengine_step(kd_model, build_optim_wrapper(kd_model, setup.optim_cfg),
                                  setup.batch),
        'kd/timm': timm_step(kd_task, optimizer_of(setup.optim_cfg,
                                                   kd_task.trainable_module.parameters()),
                             setup.batch),
        'feature/kdzoo': mmengine_step(
            feature_model, build_optim_wrapper(feature_model, setup.optim_cfg), setup.batch),
        'feature/timm': timm_step(feature_task, optimizer_of(
            setup.optim_cfg, feature_task.trainable_module.parameters()), setup.batch),
        'student/kdzoo': mmengine_step(alone, build_optim_wrapper(alone, setup.optim_cfg),
                                       setup.batch),
        'student/plain': plain_student_step(plain, optimizer_of(setup.optim_cfg,
                                                                plain.parameters()),
                                            setup.batch),
    }
    times = {}
    with Load(args.load):
        for name in ('kd', 'feature', 'student'):
            times.update(interleaved({k: v for k, v in steps.items() if k.startswith(name)},
                                     args.repeats, setup.device))
    report(ratio_line('kd', times, 'kd/kdzoo', 'kd/timm', 'timm'))
    report(ratio_line('feature', times, 'feature/kdzoo', 'feature/timm', 'timm'))
    report(ratio_line('student', times, 'student/kdzoo', 'student/plain', 'plain'))
    breakdown(setup, kd_model, report)
    report(f'load per core after: {load_per_core():.2f}; total {time.perf_counter() - start:.0f} s')
    if args.out:
        with open(args.out, 'x') as f:
            f.write('\n'.join([f'$ python tools/bench_step.py {" ".join(argv)}', *lines])
                    + '\n')


if __name__ == '__main__':
    main()
