"""What the training-time monitor (kdzoo/monitor.py) costs: its share of a distillation step.

    python tools/bench_monitor.py [--config configs/quickstart/msdcrd.py] [--batch 64]
                                  [--repeats 20] [--device cpu|cuda]

Builds the config's distilling model (random teacher: no checkpoint needed), then on one random
batch measures, in this one process, the median of ``--repeats`` runs of

- the whole training step (forward, backward, optimizer step; the monitor on, as by default),
- the monitor alone: ``monitor_values`` on that step's losses and readouts,

and prints ``monitor / step`` (target < 1 %).
"""
import argparse
import warnings

import torch

from kdzoo.experiments.timing import timed
from kdzoo.monitor import monitor_values
from kdzoo.runner import load_config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default='configs/quickstart/msdcrd.py')
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    args = parser.parse_args(argv)
    from mmengine.optim import OptimWrapper

    from kdzoo.adapters import wrap
    from kdzoo.registry import build
    cfg = wrap(load_config(args.config))
    cfg.model.distill_cfg.teacher.checkpoint = None
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # no teacher checkpoint: a random teacher is enough here
        model = build(cfg.model).to(args.device).train()
    size = cfg.model.student.get('img_size') or 32
    images = torch.rand(args.batch, 3, size, size, device=args.device) * 255
    labels = torch.randint(0, cfg.model.student.num_classes, (args.batch,), device=args.device)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-3))

    def step():
        optim.update_params(model.parse_losses(model(images, labels, mode='loss'))[0])

    with model.distiller.step():
        losses, student, teacher = model.recorded_step(images, labels)
        distill = model.distiller.distill_losses(student, teacher, iteration=0, target=labels)
    step_s = timed(step, args.repeats, args.device)
    monitor_s = timed(lambda: monitor_values(losses, distill, student, teacher),
                               args.repeats, args.device)
    print(f'{args.config}, batch {args.batch}, {args.device} ({torch.get_num_threads()} threads): '
          f'training step {1000 * step_s:.1f} ms, monitor {1000 * monitor_s:.3f} ms '
          f'({sorted(monitor_values(losses, distill, student, teacher))}); monitor / step = '
          f'{monitor_s / step_s:.3%} (target < 1 %)')
    return monitor_s / step_s


if __name__ == '__main__':
    main()
