"""A checkpoint MMEngine loads into a run (``load_from``, ``--resume``) must be one of that run's
model, checked before anything of it is applied.

MMEngine loads the model's weights with ``strict=False``, a warning in the log for what did not
load. For ``--resume`` it then restores the optimizer, the schedulers and the iteration counter:
a checkpoint of another config loads none of the model's tensors and training goes on from
random weights with the counter of the other run; after a ``distill_cfg`` change the optimizer's
parameter groups differ and the resume fails in ``torch.optim`` with a ``ValueError`` that names
neither the checkpoint nor the change. A ``load_from`` of another model (or a plain run's student
for a distilling config, whose keys are under ``distiller.student.``) loads nothing and trains
from the initialisation.

:class:`LoadCheckHook` stops on both, with one line naming the checkpoint and what differs
(docs/troubleshooting.md, "Loading, testing, resuming, exporting, analysing"): a resume
checkpoint must hold exactly the model's keys and shapes and the same ``distill_cfg``
(:func:`resume_mismatch`); a ``load_from`` checkpoint must fill at least
:data:`kdzoo.checkpoint.MIN_LOADED` of the model (:func:`kdzoo.checkpoint.check_loaded_fraction`,
the rule of every ``strict=False`` load in kdzoo).
"""
import warnings

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from kdzoo.checkpoint import CheckpointError, check_loaded_fraction, describe_fit, state_dict_of
from kdzoo.wrappers import unwrap


def flatten(value, prefix=''):
    """``{dotted path: leaf}`` of nested dicts and lists (list items as ``path[i]``)."""
    if isinstance(value, dict):
        items = [(f'{prefix}.{k}' if prefix else str(k), v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(f'{prefix}[{i}]', v) for i, v in enumerate(value)]
    else:
        return {prefix: value}
    flat = {}
    for path, item in items:
        flat.update(flatten(item, path))
    return flat if flat else {prefix: value}


def distill_cfg_of(cfg):
    """The ``distill_cfg`` of a config, wrapped for distillation (``model.distill_cfg``) or not,
    as plain dicts; ``None`` for a plain run."""
    model = cfg.get('model') or {}
    distill_cfg = model.get('distill_cfg') if isinstance(model, dict) else None
    distill_cfg = distill_cfg if distill_cfg is not None else cfg.get('distill_cfg')
    return None if distill_cfg is None else flatten(
        distill_cfg.to_dict() if hasattr(distill_cfg, 'to_dict') else dict(distill_cfg))


# distill_cfg keys (dotted paths) that change no training step: a resume may switch them (e.g. the
# teacher check off, as tests/tools/test_train.py does, or a check's opt-out that a run started
# before that check existed needs)
UNTRAINED_KEYS = ('teacher_check', 'monitor', 'check_teacher_labels', 'teacher.check_classes',
                  'teacher.strict', 'teacher.unsafe_load')


def untrained(path):
    """Whether ``path`` is one of :data:`UNTRAINED_KEYS`, a named teacher's
    (``teachers.<name>.strict``) as the one teacher's (``teacher.strict``)."""
    if path.startswith('teachers.'):
        path = 'teacher.' + path.split('.', 2)[-1]
    return any(path == key or path.startswith(key + '.') for key in UNTRAINED_KEYS)


def saved_config(checkpoint):
    """The config a checkpoint saved (``meta.cfg``, its text) as a ``Config``, read once per
    load; ``None`` when it saved none, or, with a warning, when MMEngine cannot parse it back
    (nothing of it can be compared)."""
    from mmengine.config import Config
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    text = meta.get('cfg') if isinstance(meta, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return Config.fromstring(text, file_format='.py')
    except Exception as err:
        warnings.warn(f'the config saved in the resume checkpoint cannot be read back ({err}); '
                      'its distill_cfg and optimizer are not compared with this run\'s (its '
                      'tensors are)')
        return None


def optimizer_cfg(cfg):
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
    return optimizer if isinstance(optimizer, dict) else {}


def optimizer_change(saved_cfg, cfg):
    """``'<saved> in the checkpoint, <now> now'`` when the optimizer type of the checkpoint's
    config ``saved_cfg`` differs from ``cfg``'s (its saved state cannot be restored into another
    optimizer: torch fails with a ``KeyError``), else ``None``."""
    saved, now = optimizer_cfg(saved_cfg).get('type'), optimizer_cfg(cfg).get('type')
    if saved and now and str(saved) != str(now):
        return f'{saved} in the checkpoint, {now} now'
    return None


def kept_optimizer_settings(saved_cfg, cfg):
    """The optimizer settings (``lr``, ``weight_decay``, ...) of ``cfg`` that differ from the
    checkpoint's config ``saved_cfg``: a resume restores the checkpoint's optimizer state, so
    they are not used; ``['lr 0.01 in the checkpoint, 0.5 now', ...]``."""
    saved, now = optimizer_cfg(saved_cfg), optimizer_cfg(cfg)
    return [f'{key} {saved[key]!r} in the checkpoint, {now[key]!r} now' for key in sorted(now)
            if key != 'type' and key in saved and saved[key] != now[key]]


def distill_cfg_changes(saved_cfg, cfg, limit=5):
    """How the ``distill_cfg`` of the checkpoint's config ``saved_cfg`` differs from ``cfg``'s,
    :data:`UNTRAINED_KEYS` aside: ``['distill_cfg.<path>: <saved> in the checkpoint, <now>
    now', ...]`` (at most ``limit``, then a count); ``[]`` when equal."""
    saved, now = distill_cfg_of(saved_cfg), distill_cfg_of(cfg)
    if saved is None and now is None:
        return []
    if saved is None or now is None:
        return ['distill_cfg: ' + ('none in the checkpoint\'s run, one now' if saved is None
                                   else 'in the checkpoint\'s run, none now')]
    missing = object()
    changes = [f'distill_cfg.{path}: {saved.get(path, missing)!r} in the checkpoint, '
               f'{now.get(path, missing)!r} now'.replace(repr(missing), 'absent')
               for path in sorted(set(saved) | set(now))
               if saved.get(path, missing) != now.get(path, missing)
               and not untrained(path)]
    more = [f'... and {len(changes) - limit} more'] if len(changes) > limit else []
    return changes[:limit] + more


def resume_mismatch(model, checkpoint, cfg, saved_cfg):
    """What makes ``checkpoint`` (loaded; ``saved_cfg`` its :func:`saved_config`) not a
    checkpoint of the run of ``cfg`` building ``model``: the model's tensors it does not fill,
    another optimizer type, or the ``distill_cfg`` changes; ``None`` when it matches."""
    own = model.state_dict()
    filled, problems = describe_fit(own, state_dict_of(checkpoint))
    if problems:
        return f'it fills {filled} of the {len(own)} tensors of {type(model).__name__} ({problems})'
    if saved_cfg is None:
        return None
    optimizer = optimizer_change(saved_cfg, cfg)
    if optimizer:
        return f'its optimizer differs: {optimizer}'
    changes = distill_cfg_changes(saved_cfg, cfg)
    return 'its distill_cfg differs: ' + '; '.join(changes) if changes else None


def check_load_from(model, checkpoint, source):
    """A ``load_from`` checkpoint filling under :data:`kdzoo.checkpoint.MIN_LOADED` of
    ``model`` is refused; above, what does not load is a warning."""
    own = model.state_dict()
    filled, problems = describe_fit(own, state_dict_of(checkpoint))
    if problems:
        check_loaded_fraction(model, f'{source} (load_from)', filled, len(own), problems)


@HOOKS.register_module()
class LoadCheckHook(Hook):
    """On ``--resume`` (``resume=True``), :func:`resume_mismatch` of the checkpoint is an error;
    on a ``load_from`` alone, :func:`check_load_from`; both before MMEngine applies any of it.
    Added to every run by :func:`kdzoo.runner.build_runner`."""

    priority = 'VERY_HIGH'  # before any other hook reads the checkpoint

    def after_load_checkpoint(self, runner, checkpoint):
        model = unwrap(runner.model)
        source = runner._load_from or 'of the work dir'
        if not getattr(runner, '_resume', False):
            check_load_from(model, checkpoint, source)
            return
        saved_cfg = saved_config(checkpoint)
        mismatch = resume_mismatch(model, checkpoint, runner.cfg, saved_cfg)
        kept = kept_optimizer_settings(saved_cfg, runner.cfg) if saved_cfg is not None else []
        if kept and not mismatch:
            runner.logger.warning(
                'resume: the optimizer state of the checkpoint is restored, so this config\'s '
                f'optimizer settings are not used: {"; ".join(kept)} (MMEngine restores the '
                'checkpoint\'s; train with load_from in a new work dir to use yours)')
        if mismatch:
            raise CheckpointError(
                f'the resume checkpoint {source} does not match this config '
                f'({runner.cfg.filename}): {mismatch}. Resume only from a checkpoint of this '
                'run\'s config (--resume with its work dir); to start from these weights '
                'instead, train with load_from in a new work dir.')
