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


def random_states(cuda=True):
    """The global random streams' states: torch CPU, every CUDA device once CUDA is in use (with
    ``cuda``), numpy and Python, as plain types that ``torch.load(weights_only=True)`` reads
    back (checkpoints keep them: :class:`kdzoo.hooks.RandomStateHook`)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return dict(
        torch=torch.get_rng_state(),
        cuda=torch.cuda.get_rng_state_all() if cuda and torch.cuda.is_initialized() else None,
        numpy=(kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        python=random.getstate())


def set_random_states(states):
    """Set the global random streams to ``states`` (from :func:`random_states`)."""
    torch.set_rng_state(states['torch'])
    if states['cuda'] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])
    kind, keys, position, has_gauss, cached = states['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(states['python'])


@contextmanager
def seeded(seed, cuda=True):
    """Run a block on a stream of its own: torch CPU (and, with ``cuda``, every CUDA device in
    use), numpy and Python seeded from ``seed``; on exit every global state is as before, the
    seed ``torch.initial_seed()`` reports included, so the stream outside continues as if the
    block had not run. CUDA is never seeded before it is in use: ``torch.manual_seed`` would
    queue a seed for its start-up and silently replace the run's own."""
    states = random_states(cuda)
    initial = torch.initial_seed()
    try:
        torch.default_generator.manual_seed(seed)
        if states['cuda'] is not None:
            for device in range(torch.cuda.device_count()):
                torch.cuda.default_generators[device].manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2 ** 32)
        yield seed
    finally:
        torch.default_generator.manual_seed(initial)  # the seed it reports; the state follows
        set_random_states(states)


def isolated_rng(name):
    """:func:`seeded` with a seed derived from the run's (``torch.initial_seed()``) and ``name``:
    reproducible for a given run seed, and invisible to the global stream."""
    return seeded(derive_seed(torch.initial_seed(), name))
