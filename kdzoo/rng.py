"""Random streams: the one mechanism that keeps paired runs paired.

Two rules, used by the adapters (building a distilling model), the paired comparisons and resume:

1. The student draws from the global stream exactly as it would alone. Everything a distilling
   model adds — the teacher, connectors, their initialisation — is built inside
   :func:`isolated_rng`, which forks the global torch / numpy / Python states, seeds a stream of
   its own derived from the run's seed and a name, and restores the global states on exit. So
   ``torch.manual_seed(s); build(cfg).init_weights()`` gives the same student, wrapped or alone.
2. Anything random per sample or per step (augmentation, a loss's sampling) draws from a
   generator seeded by :func:`derive_seed` of ``(seed, iteration, sample, ...)``, never from the
   global stream, so what happened before (a teacher built, a teacher check run, a process killed
   and resumed) cannot shift it.
"""
import hashlib
import random
from contextlib import contextmanager

import numpy as np
import torch


def derive_seed(*parts):
    """A 63-bit seed from any ints and strings: the same parts give the same seed, in every
    process and on every platform (no use of Python's salted ``hash``)."""
    text = '\x1f'.join(f'{type(p).__name__}:{p}' for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], 'little') >> 1


def generator(*parts, device='cpu'):
    """A ``torch.Generator`` seeded by :func:`derive_seed` of ``parts``."""
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))


@contextmanager
def seeded(seed, cuda=True):
    """Run a block on a stream of its own: torch (CPU, and CUDA with ``cuda``), numpy and Python
    seeded from ``seed``; the global states are restored on exit, so the stream outside
    continues as if the block had not run."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = (list(range(torch.cuda.device_count()))
               if cuda and torch.cuda.is_initialized() else [])
    initial = torch.initial_seed()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2 ** 32)
            yield seed
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if torch.initial_seed() != initial:  # fork_rng restores the state, not the seed it reports
            state = torch.get_rng_state()
            torch.default_generator.manual_seed(initial)
            torch.set_rng_state(state)


def isolated_rng(name):
    """:func:`seeded` with a seed derived from the run's (``torch.initial_seed()``) and ``name``:
    reproducible for a given run seed, and invisible to the global stream."""
    return seeded(derive_seed(torch.initial_seed(), name))
