"""A training data stream whose randomness depends only on ``(seed, position, sample)``.

MMEngine's pipelines (kdzoo's crop / flip, mmcv's and mmseg's / mmdet's transforms) draw from the
global torch / numpy / Python streams, which everything else in a step draws from too (dropout,
a loss's sampling, a teacher built or checked). Two runs that should see the same augmented
batches — the two arms of a paired comparison, a run and its resumed self — then do not.

:func:`seed_train_stream` rewrites a config's ``train_dataloader`` so that

- :class:`StreamSampler` wraps the configured sampler and yields ``(index, position)`` keys, the
  position counting samples from the start of training over all ranks (rank ``r`` of ``world``:
  ``(epoch * len * world) + k * world + r``, the position the sample has in a 1-process run of the
  same seed; infinite samplers: epoch 0);
- :class:`SeededDataset` wraps the configured dataset and loads key ``(index, position)`` with all
  three global streams seeded from ``derive_seed(seed, position, index)`` (and restored after),
  whatever the pipeline and in any worker process.

With ``keys=True`` (a run with a teacher-output cache, :mod:`kdzoo.teacher_cache`) each loaded
sample also carries its key as ``stream_index`` / ``stream_position``, which
:class:`kdzoo.hooks.TeacherCacheHook` takes out of the batch before anything else sees it.

The same seed gives the same augmented sample at the same position, independent of anything else
drawn in the run; a resumed run (MMEngine replays the sampler up to the saved iteration) gets
the same samples as the uninterrupted one. The rule is the one of :mod:`kdzoo.rng`.
"""
from mmengine.dist import get_dist_info
from mmengine.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import Dataset, Sampler

from kdzoo.rng import derive_seed, seeded

STREAM_KEYS = ('stream_index', 'stream_position')  # a sample's key, with keys=True


def split_key(key):
    """``(index, position)`` of a stream key; a plain index has no position (``None``)."""
    return key if isinstance(key, tuple) else (key, None)


@DATASETS.register_module()
class SeededDataset(Dataset):
    """Load each sample with the global random streams seeded from ``(seed, position, index)``.

    Args:
        dataset: the wrapped dataset (config dict or object); its attributes (``metainfo``,
            ``get_data_info``, ...) are reachable through the wrapper.
        seed: the run's seed.
        keys: add ``stream_index`` and ``stream_position`` to each sample (a dict) loaded with a
            position.
    """

    def __init__(self, dataset, seed, keys=False):
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.seed = int(seed)
        self.keys = bool(keys)

    def __len__(self):
        return len(self.dataset)

    def __getattr__(self, name):
        if name == 'dataset':  # not set yet (unpickling in a worker): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def get_data_info(self, key):
        return self.dataset.get_data_info(split_key(key)[0])

    def __getitem__(self, key):
        index, position = split_key(key)
        if position is None:
            return self.dataset[index]
        with seeded(derive_seed(self.seed, position, index), cuda=False):
            sample = self.dataset[index]
        if self.keys:
            sample = dict(sample, **dict(zip(STREAM_KEYS, (index, position))))
        return sample


@DATA_SAMPLERS.register_module()
class StreamSampler(Sampler):
    """Wrap a sampler: yield ``(index, position)`` keys for :class:`SeededDataset`.

    Args:
        dataset: the dataset (given by MMEngine's ``build_dataloader``).
        sampler: the wrapped sampler's config (built with the same ``dataset`` and ``seed``).
        seed: the runner's seed (given by MMEngine).
    """

    def __init__(self, dataset, sampler, seed=None):
        default_args = dict(dataset=dataset, seed=seed)
        self.sampler = (DATA_SAMPLERS.build(sampler, default_args=default_args)
                        if isinstance(sampler, dict) else sampler)
        self.dataset = dataset
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        # MMEngine's samplers deal the global order out to the ranks (rank r takes the samples
        # r, r + world, ...): counting positions the same way gives a sample the position it has
        # in a 1-process run of the same seed, so its augmentation does not depend on the
        # number of processes.
        rank, world = get_dist_info()
        start = self.epoch * len(self.sampler) * world
        for k, index in enumerate(self.sampler):
            yield index, start + k * world + rank


def seed_train_stream(cfg, seed, keys=False):
    """Wrap ``cfg.train_dataloader``'s dataset and sampler (once) so its randomness follows
    ``(seed, position, sample)`` (``keys``: see :class:`SeededDataset`); returns ``cfg``. A config
    without a train loader is unchanged."""
    loader = cfg.get('train_dataloader')
    if not loader:
        return cfg
    if loader.get('dataset', {}).get('type') == 'SeededDataset':  # a config dumped by a run
        loader.dataset.keys = keys
        return cfg
    loader.dataset = dict(type='SeededDataset', dataset=loader.dataset, seed=seed, keys=keys)
    sampler = loader.get('sampler') or dict(type='DefaultSampler', shuffle=True)
    loader.sampler = dict(type='StreamSampler', sampler=sampler)
    return cfg
