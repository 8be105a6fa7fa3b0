"""Filling a teacher-output cache ahead of training, without training the student: the engine of
``kdzoo cache-teacher`` (docs/teacher_cache.md).

:func:`fill` takes a runner built as ``kdzoo train`` builds it (:func:`kdzoo.runner.build_runner`
on a config with a teacher cache: ``distill_cfg.teacher.cache``, ``distill_cfg.teachers.<name>.
cache``) and walks its training data as its training loop
would: the same data loader, sampler and stream positions, ``IterBasedTrainLoop``'s infinite
iterator (the sampler's epoch set at each new pass, as that loop does) or, epoch-based, one pass
per epoch with the sampler's epoch set first (as MMEngine's ``DistSamplerSeedHook`` does before
each epoch, when the runner has it). Per batch it runs the model's data preprocessor in training
mode and, for each teacher with a cache, its side of the step
(``model.cached_teacher_readouts``) inside ``model.distiller.step()``, with the batch's stream
keys (teachers without a cache do not run): each cache stores what a training step of the same
run would store, and a later training run reads it instead of running that teacher. The caches
are opened, fed their stream keys and flushed by :class:`kdzoo.hooks.TeacherCacheHook`'s own
methods, called here in the loop's order.
"""
import os.path as osp
from itertools import count
from types import SimpleNamespace

from kdzoo.hooks.teacher_cache import TeacherCacheHook
from kdzoo.teacher_cache import configured_caches
from kdzoo.wrappers import unwrap


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
    returns ``{teacher name: its TeacherCache}`` (:class:`kdzoo.teacher_cache.TeacherCache`),
    flushed. The runner is not trained:
    no optimizer step, hook, validation or checkpoint of the run happens."""
    model = unwrap(runner.model)
    if not getattr(model, 'cache_specs', None):
        raise ValueError('the runner\'s model has no teacher-output cache: its config needs '
                         'distill_cfg (with a teacher) and distill_cfg.teacher.cache (or '
                         'distill_cfg.teachers.<name>.cache)')
    hook = TeacherCacheHook()
    hook.before_train(RunWindow(runner, iterations))
    model.train()  # as the loop before every iteration (the distiller keeps the teacher in eval)
    batches = training_batches(runner)
    for index in range(iterations):
        batch = next(batches)
        hook.before_train_iter(runner, index, batch)  # the stream keys, out of the batch
        inputs = model.data_preprocessor(batch, True)['inputs']
        keys, model.stream_keys = model.stream_keys, None
        with model.distiller.step():
            for name in model.teacher_caches:  # the teachers without a cache do not run
                model.cached_teacher_readouts(name, inputs, keys)
    hook.after_train(runner)  # the rows left, written
    return dict(model.teacher_caches)


def cache_options(cfg, directory=None, seed=None):
    """The cfg-options that point a loaded distilling config's teacher-output caches at their
    folders, each teacher's other cache settings (``dtype``, ``topk``, ``readouts``) kept
    (float32, all classes, when it has none). Under ``directory``: every teacher given as a dict
    gets one, ``directory`` itself for the one teacher of ``distill_cfg.teacher``,
    ``directory/<name>`` per teacher of ``distill_cfg.teachers``; without it, the teachers whose
    config sets a cache keep their folder (``{}`` when none does). With ``seed``, each folder's
    ``seed<seed>`` sub-folder (one cache holds one seed: ``kdzoo compare``, ``kdzoo
    cache-teacher --seeds``). ``ValueError`` when the config does not distil or a cache
    setting is wrong."""
    found = configured_caches(cfg)
    if not found:
        raise ValueError('a teacher-output cache needs a distilling config (distill_cfg with a '
                         'teacher config); this one has none')
    options = {}
    for key, name, teacher, spec in found:
        if directory is not None:
            folder = directory if key.endswith('distill_cfg.teacher') else osp.join(directory,
                                                                                  name)
        elif spec is not None:
            folder = spec.dir
        else:
            continue
        folder = folder if seed is None else osp.join(folder, f'seed{seed}')
        own = teacher.get('cache')
        if isinstance(own, str):  # a folder alone (float32, all classes): replaced by a folder
            options[f'{key}.cache'] = folder  # (MMEngine refuses a dict over a string)
            continue
        value = dict(dir=folder)
        if spec is not None:
            value.update(dtype=spec.dtype, topk=spec.topk, readouts=list(spec.readouts))
        if isinstance(own, dict):
            value['_delete_'] = True  # replaces the config's dict whole (MMEngine would merge it)
        options[f'{key}.cache'] = value
    return options
