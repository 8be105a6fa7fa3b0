"""Filling a teacher-output cache ahead of training, without training the student: the engine of
``tools/cache_teacher.py`` (docs/teacher_cache.md).

:func:`fill` takes a runner built as ``tools/train.py`` builds it (:func:`kdzoo.runner.build_runner`
on a config with ``distill_cfg.teacher.cache``) and walks its training data as its training loop
would: the same data loader, sampler and stream positions, ``IterBasedTrainLoop``'s infinite
iterator (the sampler's epoch set at each new pass, as that loop does) or, epoch-based, one pass
per epoch with the sampler's epoch set first (as MMEngine's ``DistSamplerSeedHook`` does before
each epoch, when the runner has it). Per batch it runs the model's data preprocessor in training
mode and the teacher's side of the step, ``model.teacher_readouts`` inside
``model.distiller.step()``, with the batch's stream keys handed to the model: the cache stores
what a training step of the same run would store, and a later training run reads it instead of
running the teacher. The cache is opened, fed its stream keys and flushed by
:class:`kdzoo.hooks.TeacherCacheHook`'s own methods, called here in the loop's order.
"""
import os.path as osp
from itertools import count
from types import SimpleNamespace

from kdzoo.hooks.teacher_cache import TeacherCacheHook
from kdzoo.teacher_cache import configured_cache
from kdzoo.wrappers import unwrap


def seed_dirs(directory, seeds):
    """``{seed: folder}`` of the caches of ``seeds`` under ``directory``: ``<directory>/seed<k>``
    each (the layout ``tools/compare.py --teacher-cache DIR`` reads)."""
    return {seed: osp.join(directory, f'seed{seed}') for seed in seeds}


class RunWindow:
    """``runner`` as :meth:`TeacherCacheHook.before_train` reads it, its training ``iterations``
    long: the hook sizes the cache (the expected bytes it prints, the free-disk check) by
    ``runner.train_loop.max_iters``, and what is filled may be shorter or longer than the
    config's run. Every other attribute is the runner's."""

    def __init__(self, runner, iterations):
        self._runner = runner
        self.train_loop = SimpleNamespace(max_iters=iterations)

    def __getattr__(self, name):
        return getattr(self._runner, name)


def set_epoch(loader, epoch):
    """The sampler's epoch, set as MMEngine's ``DistSamplerSeedHook.before_train_epoch`` sets it
    (the sampler's, else the batch sampler's sampler's)."""
    if hasattr(getattr(loader, 'sampler', None), 'set_epoch'):
        loader.sampler.set_epoch(epoch)
    elif hasattr(getattr(getattr(loader, 'batch_sampler', None), 'sampler', None), 'set_epoch'):
        loader.batch_sampler.sampler.set_epoch(epoch)


def training_batches(runner):
    """The training batches in the order the runner's training loop takes them (see the module
    docstring), endless."""
    from mmengine.hooks import DistSamplerSeedHook
    from mmengine.runner import IterBasedTrainLoop
    loop = runner.train_loop
    seeds_epochs = any(isinstance(hook, DistSamplerSeedHook) for hook in runner.hooks)
    if isinstance(loop, IterBasedTrainLoop):
        if seeds_epochs:
            set_epoch(loop.dataloader, 0)  # before_train_epoch, called once by this loop
        yield from loop.dataloader_iterator  # the loop's own; sets the epoch at each new pass
        return
    for epoch in count():
        if seeds_epochs:
            set_epoch(loop.dataloader, epoch)
        yield from loop.dataloader


def iterations_of(runner, iters=None, epochs=None):
    """The training iterations to fill: ``iters``, or ``epochs`` passes over the training data,
    or (neither given) the runner's whole run."""
    if iters is not None:
        return iters
    if epochs is not None:
        return epochs * len(runner.train_loop.dataloader)
    return runner.train_loop.max_iters


def fill(runner, iterations):
    """Store the teacher's readouts of the first ``iterations`` training iterations of
    ``runner``'s run in its model's cache (those already stored are read, not computed again);
    returns the :class:`kdzoo.teacher_cache.TeacherCache`, flushed. The runner is not trained:
    no optimizer step, hook, validation or checkpoint of the run happens."""
    model = unwrap(runner.model)
    if getattr(model, 'cache_spec', None) is None:
        raise ValueError('the runner\'s model has no teacher-output cache: its config needs '
                         'distill_cfg (with a teacher) and distill_cfg.teacher.cache')
    hook = TeacherCacheHook()
    hook.before_train(RunWindow(runner, iterations))
    model.train()  # as the loop before every iteration (the distiller keeps the teacher in eval)
    batches = training_batches(runner)
    for index in range(iterations):
        batch = next(batches)
        hook.before_train_iter(runner, index, batch)  # the stream keys, out of the batch
        inputs = model.data_preprocessor(batch, True)['inputs']
        with model.distiller.step():
            model.teacher_readouts(inputs)
    hook.after_train(runner)  # the rows left, written
    return model.teacher_cache


def configured_cache_dir(cfg):
    """The folder of a loaded config's own ``distill_cfg.teacher.cache``, or ``None``."""
    found = configured_cache(cfg)
    return found[2].dir if found and found[2] else None


def cache_option(cfg, directory):
    """The cfg-option ``{key: value}`` that points a loaded distilling config's teacher-output
    cache at ``directory``, its other settings (``dtype``, ``topk``, ``readouts``) kept from the
    config's own ``distill_cfg.teacher.cache`` (float32, all classes, when it has none).
    ``ValueError`` when the config does not distil or its cache setting is wrong."""
    found = configured_cache(cfg)
    if found is None:
        raise ValueError('a teacher-output cache needs a distilling config (distill_cfg with a '
                         'teacher config); this one has none')
    key, teacher, spec = found
    value = dict(dir=directory)
    if spec is not None:
        value.update(dtype=spec.dtype, topk=spec.topk, readouts=list(spec.readouts))
    if isinstance(teacher.get('cache'), dict):
        value['_delete_'] = True  # replaces the config's dict whole (MMEngine would merge it)
    return {f'{key}.teacher.cache': value}
