"""The teacher-output cache's hook: opens the cache before training, hands each batch's stream
keys to the model, writes the last rows after training (:mod:`kdzoo.teacher_cache`,
docs/teacher_cache.md)."""
import os
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmengine.optim import AmpOptimWrapper
from mmengine.registry import HOOKS

import kdzoo
from kdzoo.data_stream import STREAM_KEYS
from kdzoo.hashing import data_paths, data_sha, file_sha, state_sha
from kdzoo.rng import isolated_rng
from kdzoo.teacher import model_config, teacher_configs
from kdzoo.teacher_cache import FORMAT, LAYOUT_FIELDS, TeacherCache, manifest_text, sample_bytes
from kdzoo.teacher_names import side_name
from kdzoo.wrappers import unwrap

NOT_READ = ('batch_size', 'num_workers', 'persistent_workers', 'pin_memory', 'prefetch_factor')


def pop_stream_keys(data_batch):
    """``(indices, positions)`` of a collated batch, taken out of it (lists of ints)."""
    missing = [key for key in STREAM_KEYS if key not in data_batch]
    if missing:
        raise KeyError(f'the training batch has no {missing}: the train_dataloader\'s collate_fn '
                       'dropped the keys the seeded data stream adds to each sample for the '
                       'teacher cache; use a collate_fn that keeps every key of the samples '
                       '(default_collate, pseudo_collate) or remove the teacher cache setting')
    index, position = (data_batch.pop(key) for key in STREAM_KEYS)
    return torch.as_tensor(index).tolist(), torch.as_tensor(position).tolist()


def check_batch_augments(model, directory, setting):
    """A data preprocessor's batch augments (mmdet's ``BatchSyncRandomResize``, ...) draw from
    the global streams in the step, outside the seeded data stream: the teacher's inputs are then
    no function of ``(seed, position)`` and no cache can be exact (``setting``: the cache's key in
    the config, named in the message)."""
    augments = getattr(model.data_preprocessor, 'batch_augments', None)
    if augments:
        names = [type(a).__name__ for a in augments]
        raise ValueError(
            f"{setting}: the data preprocessor's batch_augments {names} draw "
            'their randomness in the training step, outside the seeded data stream, so the '
            "teacher's inputs are not a function of (seed, position) and a cache of its outputs "
            f'would be replayed onto other inputs. Remove {setting}, or move the '
            f'augmentation into the dataset pipeline.\nteacher cache {directory}: not opened '
            f'(batch_augments {names})')


def check_own_folders(model):
    """Each teacher's cache is a folder of its own: a cache's manifest and rows are one teacher's
    (two teachers in one folder: the second would be refused as a cache written for another
    setup, and removing the folder would not help). ``ValueError`` naming both settings."""
    seen = {}
    for name, spec in model.cache_specs.items():
        folder = osp.realpath(spec.dir)
        if folder in seen:
            first, directory = seen[folder]
            raise ValueError(
                f'{model.teacher_key(first)}.cache and {model.teacher_key(name)}.cache are the '
                f'same folder ({directory}): each teacher needs a cache of its own (its manifest '
                f'records that teacher). Give each its own dir, e.g. DIR/{first} and DIR/{name} '
                '(kdzoo cache-teacher --cache DIR does).')
        seen[folder] = (name, spec.dir)


def loader_description(loader):
    """The training loader's config as it decides the samples (its dataset unwrapped from the
    seeded stream; workers and the batch size, recorded apart, left out)."""
    loader = loader.to_dict() if hasattr(loader, 'to_dict') else dict(loader)
    for key in NOT_READ:
        loader.pop(key, None)
    dataset = loader.get('dataset') or {}
    if dataset.get('type') == 'SeededDataset':
        loader['dataset'] = dataset.get('dataset')
    return loader


def step_autocast(optim_wrapper):
    """The autocast MMEngine's ``AmpOptimWrapper`` runs the training step in, the teacher's
    forward included (its ``dtype``; ``None`` is MMEngine's default for the device), or ``None``
    without one."""
    if isinstance(optim_wrapper, AmpOptimWrapper):
        return f'AmpOptimWrapper {optim_wrapper.cast_dtype}'
    return None


def teacher_description(model, name, cfg, optim_wrapper=None):
    """Teacher ``name``'s manifest fields: its checkpoint's bytes, its model config, its weights
    and how its inputs are made (the run's ``optim_wrapper``: the step's autocast)."""
    teacher_cfg = dict(teacher_configs((cfg.get('model') or {}).get('distill_cfg'))[name])
    teacher = model.teachers[name]
    checkpoint = teacher_cfg.get('checkpoint')
    config = teacher_cfg.get('config')
    described = (model_config(config, teacher_cfg.get('cfg_options')).to_dict()
                 if isinstance(config, (str, dict)) else type(teacher).__qualname__)
    preprocessor = getattr(teacher, 'data_preprocessor', None)
    return dict(
        teacher_checkpoint=file_sha(checkpoint) if isinstance(checkpoint, str) else 'none',
        teacher_config=manifest_text([described, teacher_cfg.get('strict', True)]),
        teacher_weights=state_sha(teacher.state_dict()),
        teacher_inputs=manifest_text([preprocessor and module_description(preprocessor),
                                      model.renormalise[name], str(model.teacher_autocast),
                                      step_autocast(optim_wrapper)]))


def module_description(module):
    """A built module's type, buffers and plain settings (numbers, strings, flags, tuples: a data
    preprocessor's mean / std, padding divisor and value, channel order, ...)."""
    settings = {name: value for name, value in vars(module).items()
                if name != 'training' and isinstance(value, (bool, int, float, str, tuple, list))}
    buffers = {name: buffer.tolist() for name, buffer in module.named_buffers()}
    return [type(module).__qualname__, settings, buffers]


def run_manifest(runner, model, name, spec):
    """This run's manifest of teacher ``name``'s cache (:data:`kdzoo.teacher_cache.MANIFEST_FIELDS`
    and the layout)."""
    cfg = runner.cfg
    loader = cfg.train_dataloader
    return dict(
        format=FORMAT, kdzoo_version=kdzoo.__version__, task=type(model).__name__,
        **teacher_description(model, name, cfg, runner.optim_wrapper),
        data=data_sha(data_paths(cfg, loaders=('train_dataloader',))),
        pipeline=manifest_text(loader_description(loader)),
        preprocessor=manifest_text(module_description(model.data_preprocessor)),
        seed=loader.dataset.get('seed'), readouts=model.stored_names(name), dtype=spec.dtype,
        topk=spec.topk, batch_size=loader.batch_size, world_size=runner.world_size)


def probe_bytes(runner, model, name, spec):
    """Bytes one sample takes in teacher ``name``'s cache, measured on the training set's first
    sample (its teacher readouts computed once, in random streams of its own)."""
    loader = runner.train_dataloader
    with isolated_rng('kdzoo.teacher_cache'), torch.no_grad():
        sample = loader.dataset[(0, 0)]
        batch = loader.collate_fn([sample])
        pop_stream_keys(batch)
        inputs = model.data_preprocessor(batch, True)['inputs']
        with model.distiller.teacher_taps[name].recording():
            readouts = model.stored_readouts(name, model.run_teacher(name, inputs))
    return sample_bytes(readouts, spec)


@HOOKS.register_module()
class TeacherCacheHook(Hook):
    """Open the model's teacher-output caches before training (one per teacher with a cache:
    its manifest checked or written; the expected size printed and checked against the free
    disk), give each training batch's stream keys to the model, and write the rows left at the
    end (:mod:`kdzoo.teacher_cache`). Added by :func:`kdzoo.runner.build_runner` when a teacher
    has a cache (``distill_cfg.teacher.cache``, ``distill_cfg.teachers.<name>.cache``)."""

    priority = 'HIGHEST'  # the keys leave the batch before any other hook sees it

    def before_train(self, runner):
        model = unwrap(runner.model)
        check_own_folders(model)
        reserved = {}  # disk (st_dev) -> bytes the caches opened so far will write there
        for name, spec in model.cache_specs.items():
            model.teacher_caches[name] = self.open_cache(runner, model, name, spec, reserved)

    def open_cache(self, runner, model, name, spec, reserved):
        """Teacher ``name``'s cache, opened (see the class docstring); the free disk counted
        after what the other caches of the run will write on it (``reserved``, updated)."""
        setting = f'{model.teacher_key(name)}.cache'
        check_batch_augments(model, spec.dir, setting)
        manifest = run_manifest(runner, model, name, spec)
        cache = TeacherCache(spec, manifest, rank=runner.rank, log=runner.logger.warning,
                             setting=setting).open()
        layout = {k: manifest[k] for k in LAYOUT_FIELDS}
        if cache.written_by != layout:
            runner.logger.warning(
                f'teacher cache {spec.dir}: written by {cache.written_by["world_size"]} '
                f'process(es) x batch {cache.written_by["batch_size"]}, read by '
                f'{layout["world_size"]} x {layout["batch_size"]}: the same samples at the same '
                "positions; the teacher computed them in other batches, so its outputs can "
                'differ from a live run in the last bits; samples a sampler padding its epochs to '
                'the number of processes deals to other positions are computed '
                '(docs/teacher_cache.md)')
        total = runner.train_loop.max_iters * layout['batch_size'] * layout['world_size']
        missing = max(0, total - cache.cached_rows(total))
        if missing:
            disk = os.stat(spec.dir).st_dev
            reserved[disk] = reserved.get(disk, 0) + cache.check_space(
                probe_bytes(runner, model, name, spec), missing, reserved.get(disk, 0))
        else:
            runner.logger.warning(f'teacher cache {spec.dir}: holds the {total} samples of this '
                                  f'run; the {side_name(name)} will not run in the training steps')
        return cache

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = unwrap(runner.model)
        model.stream_keys = pop_stream_keys(data_batch)

    def after_train(self, runner):
        for cache in unwrap(runner.model).teacher_caches.values():
            cache.flush()
            runner.logger.warning(cache.summary())
