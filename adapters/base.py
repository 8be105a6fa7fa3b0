"""The skeleton every distilling model shares (classification, mmseg, mmdet).

:class:`DistillModel` holds the student (the config's own model), its frozen teachers (one, from
``distill_cfg.teacher``, named ``'teacher'``, or several, named by ``distill_cfg.teachers``:
:func:`kdzoo.teacher.teacher_configs`) and a :class:`kdzoo.distiller.Distiller`, and does once, for
every task:

- building: the student first, from the global random stream exactly as alone; each teacher and
  the connectors inside :func:`kdzoo.rng.isolated_rng` (each teacher a stream of its own), so
  they draw nothing from that stream;
- the distill items parsed once (:func:`kdzoo.distiller.parse_items`, before the teachers are
  built, so an item's mistake comes first) and handed to ``check_pair`` (once per teacher, with
  the items as that teacher sees them) and the distiller; teachers that are the student, share
  its parameters or are one module under two names, and ensembles of teachers of other class
  counts, refused;
- each teacher's labels against the student's training data (``student_data``, passed by
  ``kdzoo.adapters.wrap``): its class count, and the class list and label encoding its config
  declares (:mod:`kdzoo.adapters.labels`; the adapter reads them: ``data_labels``,
  ``teacher_classes``), unless ``distill_cfg.check_teacher_labels=False``;
- ``init_weights``: the student's own ``init_weights`` (a ``Pretrained`` backbone, a head's prior),
  exactly as the student alone gets it from MMEngine's runner; a teacher is never re-initialised
  (it is initialised at build time only when no checkpoint replaces its weights);
- each teacher's inputs: the student's preprocessed batch converted to that teacher's own mean,
  std and channel order (:meth:`teacher_inputs`); every teacher an item reads runs once per step,
  without grad, under ``torch.autocast`` when ``teacher_autocast`` is a dtype
  (:meth:`running_teacher`), or is read from its teacher-output cache;
- the ``loss`` / ``predict`` / ``tensor`` dispatch, ``describe_step`` for ``--dry-run``,
  labels passed to the losses as ``target`` (with the student's ``ignore_index`` where the
  adapter sets one), the iteration (the runner's, read once per step from
  MMEngine's message hub) passed to the distiller, and the monitor's ``distill.ratio_<name>`` /
  ``distill.agree`` (``distill.agree_<teacher>`` with several) values in the loss dict
  (:mod:`kdzoo.monitor`; ``distill_cfg.monitor=False`` turns them off).

An adapter subclass says only what its framework makes specific::

    build_model(cfg)                          -> nn.Module in the framework's registry scope
    check_pair(items, student, teacher, key)  build-time checks of the items (may raise)
    student_readout_paths(student, items)     student modules its step reads (default none)
    student_step(inputs, data_samples)        -> (task losses, {reserved name: tensor})
    teacher_step(name, inputs)                -> {reserved name: tensor} of teacher ``name``
                                                 (no grad, eval)
    run_model(model, inputs, data_samples, mode)   predict / tensor of any of the models
    targets(data_samples)                     -> labels for the losses, or None

and sets ``RESERVED`` (the readout names it provides; ``LOGIT_READOUTS`` those that are class
scores). The tap names the items read are the distiller's (``distiller.tap_names`` /
``distiller.readout_names``, per teacher under ``['teachers'][name]``).
"""
import warnings
from collections import OrderedDict
from contextlib import contextmanager, nullcontext

import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel

from kdzoo.distiller import Distiller, parse_items
from kdzoo.monitor import monitor_values
from kdzoo.rng import isolated_rng
from kdzoo.teacher import build_teacher, read_config, teacher_configs
from kdzoo.teacher_cache import cache_spec
from kdzoo.teacher_names import SINGLE, teacher_key

from .labels import DataLabels, check_teacher_labels

MODES = ('loss', 'predict', 'tensor')


def check_same_classes(items, logit_taps, student_classes, teacher_classes, fix):
    """Raise ``ValueError`` when an item pairs logit taps on both sides (``logit_taps``) but the
    student and teacher predict different numbers of classes; ``fix`` says how to mend it."""
    if student_classes == teacher_classes:
        return
    for item in items:
        if all(t in logit_taps for t in item.student) and item.teacher in logit_taps:
            raise ValueError(
                f'distill item {item.index} pairs student {list(item.student)} with teacher '
                f'{item.teacher!r}, but the student has num_classes={student_classes} and the '
                f'teacher num_classes={teacher_classes}; logit losses compare the same classes. '
                f'{fix}')


def check_not_shared(student, teacher, key='distill_cfg.teacher'):
    """A teacher given as a module must be a model of its own: the student itself (or a module
    sharing its parameters) would be frozen with the teacher, and KD would compare it with
    itself (loss 0, then ``element 0 of tensors does not require grad``). Checked before the
    teacher is frozen, so a refused teacher leaves the student as it was; ``key``: where the
    teacher is set (:func:`kdzoo.teacher.teacher_key`)."""
    if teacher is student:
        raise ValueError(f'{key} is the student module itself; give the teacher as '
                         'its own model: dict(config=..., checkpoint=...) or another nn.Module')
    own = {id(p) for p in student.parameters()}
    shared = [name for name, p in teacher.named_parameters() if id(p) in own]
    if shared:
        raise ValueError(
            f'{key} shares {len(shared)} parameters with the student '
            f'({", ".join(shared[:5])}{" ..." if len(shared) > 5 else ""}); freezing the teacher '
            'would freeze them in the student. Build the teacher as a separate model (e.g. '
            'copy.deepcopy(student), or dict(config=..., checkpoint=...))')


def check_distinct_teachers(configs):
    """Two names given the same ``nn.Module`` would be one teacher counted twice (its forward run
    twice a step, its readouts averaged with themselves): refused, naming both."""
    seen = {}
    for name, cfg in configs.items():
        if isinstance(cfg, torch.nn.Module):
            if id(cfg) in seen:
                raise ValueError(
                    f'distill_cfg.teachers.{seen[id(cfg)]} and distill_cfg.teachers.{name} are '
                    'the same module; give each name its own teacher (or one name, read by '
                    'several items)')
            seen[id(cfg)] = name


def unused_teachers(items, names):
    """The teachers no item reads (``[name]``), in the config's order."""
    read = {name for item in items for name, _ in item.sources}
    return [name for name in names if name not in read]


def normalisation(preprocessor):
    """``(mean, std, channel flip)`` applied by a data preprocessor (mmengine's
    ``ImgDataPreprocessor`` / mmdet's ``DetDataPreprocessor``, mmseg's ``SegDataPreProcessor``);
    ``None`` mean/std when it does not normalise (kdzoo's ``ClsDataPreprocessor``: each timm
    classifier normalises itself)."""
    if getattr(preprocessor, '_enable_normalize', False):
        mean, std = preprocessor.mean, preprocessor.std
    else:
        mean = std = None
    flip = getattr(preprocessor, '_channel_conversion',
                   getattr(preprocessor, 'channel_conversion', False))
    return mean, std, bool(flip)


def same_normalisation(a, b):
    (mean_a, std_a, flip_a), (mean_b, std_b, flip_b) = a, b
    if flip_a != flip_b or (mean_a is None) != (mean_b is None):
        return False
    return mean_a is None or (torch.equal(mean_a.cpu(), mean_b.cpu())
                              and torch.equal(std_a.cpu(), std_b.cpu()))


def renormalise(inputs, source, target):
    """Turn a ``(B, C, H, W)`` batch normalised as ``source`` into one normalised as ``target``.

    ``x = (raw - mean) / std`` after an optional BGR<->RGB flip; padding (zeros in ``source``)
    becomes ``(mean_s - mean_t) / std_t``, a constant the teacher sees at the border only.
    """
    mean_s, std_s, flip_s = source
    mean_t, std_t, flip_t = target
    raw = inputs if mean_s is None else inputs * std_s.to(inputs) + mean_s.to(inputs)
    if flip_s != flip_t:
        raw = raw.flip(1)
    return raw if mean_t is None else (raw - mean_t.to(raw)) / std_t.to(raw)


def loss_class(item):
    """The loss class of an item (its ``loss.type``: a class or a registered name)."""
    from kdzoo.registry import LOSSES
    kind = item.loss['type']
    return kind if isinstance(kind, type) else LOSSES.get(kind)


def label_using(items):
    """``[(item index, loss type)]`` of the items whose loss needs ground-truth labels (a loss
    class with ``requires_target = True``: DKD, OFA)."""
    found = []
    for item in items:
        cls = loss_class(item)
        if getattr(cls, 'requires_target', False):
            found.append((item.index, cls.__name__))
    return found


class DistillModel(BaseModel):
    """A student, its frozen teachers and a :class:`Distiller`; see the module docstring.

    Args:
        student: the student's model dict (built by :meth:`build_model`) or module.
        distill_cfg: ``dict(teacher=dict(config=..., checkpoint=..., cfg_options=...,
            strict=True), losses=[...], connectors=dict(...), teacher_check=True,
            monitor=True, check_teacher_labels=True)``, or ``teachers=dict(NAME=dict(...),
            ...)`` instead of ``teacher`` (docs/distill_cfg.md); ``teacher_check`` is read by
            ``kdzoo.adapters.wrap``.
        data_preprocessor: a dict or module; defaults to the student's own.
        student_data: the student's training dataset config (``train_dataloader.dataset``;
            ``kdzoo.adapters.wrap`` passes it): a teacher whose labels are not its labels is an
            error when built (adapters/labels.py), unless ``distill_cfg.check_teacher_labels``
            is ``False``.

    ``teacher_autocast``: ``None`` (default) or a floating dtype (e.g. ``torch.bfloat16``): the
    teacher's steps then run under ``torch.autocast`` of the inputs' device type with that dtype;
    set it on the built model (``model.teacher_autocast = torch.bfloat16``).
    """

    RESERVED = ()
    LOGIT_READOUTS = ()  # the reserved readouts that are class scores (ensembles' class check)
    use_teacher = None  # the teacher predict / tensor modes run (predicting_with_teacher)
    ignore_index = None  # the student's ignored label, passed to the losses (label_context)

    def __init__(self, student, distill_cfg, data_preprocessor=None, init_cfg=None,
                 student_data=None):
        student = self.build_model(student)  # first: the global stream, as the student alone
        if isinstance(data_preprocessor, dict):
            data_preprocessor = self.build_model(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor or student.data_preprocessor,
                         init_cfg=init_cfg)
        configs = teacher_configs(distill_cfg)
        self.multi_teacher = 'teachers' in distill_cfg
        # before the teachers: item mistakes first
        items = parse_items(distill_cfg['losses'], tuple(configs))
        check_labels = distill_cfg.get('check_teacher_labels', True)
        if not isinstance(check_labels, bool):
            raise ValueError('distill_cfg.check_teacher_labels must be True or False, got '
                             f'{check_labels!r}')
        check_distinct_teachers(configs)
        for name, cfg in configs.items():
            if isinstance(cfg, torch.nn.Module):
                check_not_shared(student, cfg, self.teacher_key(name))  # before freezing it
        # the teacher-output caches: opened before training by kdzoo.hooks.TeacherCacheHook
        self.cache_specs, teacher_cfgs = {}, {}
        for name, cfg in configs.items():
            if isinstance(cfg, dict) and 'cache' in cfg:
                self.cache_specs[name] = cache_spec(cfg['cache'], f'{self.teacher_key(name)}.cache')
                cfg = {k: v for k, v in cfg.items() if k != 'cache'}
            teacher_cfgs[name] = cfg
        self.cache_specs = {n: spec for n, spec in self.cache_specs.items() if spec is not None}
        self.teacher_caches = {}  # name -> TeacherCache, set by that hook
        self.stream_keys = None  # (indices, positions) of the batch in hand, set by that hook
        teachers = {}
        for name, cfg in teacher_cfgs.items():
            # each teacher in random streams of its own (the one teacher's as before teachers=)
            with isolated_rng('kdzoo.teacher' if name == SINGLE else f'kdzoo.teacher.{name}'):
                teachers[name] = build_teacher(cfg, build_model=self.build_model,
                                               key=self.teacher_key(name))
        unused = unused_teachers(items, configs)
        if unused:
            warnings.warn(f'distill_cfg.teachers {unused}: no distill item reads them, so they '
                          'are built and checked but never run in a training step; give them '
                          'an item (teacher=\'NAME:TAP\') or remove them', stacklevel=2)
        self.check_ensembles(items, teachers)
        for name, teacher in teachers.items():
            self.check_pair([view for item in items for view in item.on_teacher(name)],
                            student, teacher, self.teacher_key(name))
        if student_data is not None and check_labels:
            for name, teacher in teachers.items():
                self.check_labels(configs[name], teacher, student_data)
        with isolated_rng('kdzoo.connectors'):
            self.distiller = Distiller(
                student, teachers, items, distill_cfg.get('connectors'),
                student_reserved=self.RESERVED, teacher_reserved=self.RESERVED,
                student_readout_paths=self.student_readout_paths(student, items),
                teacher_stored={n: spec.readouts for n, spec in self.cache_specs.items()})
        # whether each teacher's inputs need converting: decided once (the comparison reads the
        # normalisation constants to the host, which a step must not do)
        own = normalisation(self.data_preprocessor)
        self.renormalise = {
            name: not same_normalisation(
                own, normalisation(getattr(teacher, 'data_preprocessor', None)))
            for name, teacher in teachers.items()}
        self.monitor = bool(distill_cfg.get('monitor', True))
        self.teacher_autocast = None
        self._steps = 0  # training steps taken: the iteration outside a runner

    def teacher_key(self, name):
        """Where teacher ``name`` is set in the config, for messages."""
        return teacher_key(name, self.multi_teacher)

    def check_ensembles(self, items, teachers):
        """An ensemble of class scores (:attr:`LOGIT_READOUTS`) averages them class by class:
        members whose teachers predict other numbers of classes are refused when the model is
        built (other shapes are refused on the first batch: :func:`kdzoo.distiller.ensemble`)."""
        for item in items:
            members = [(name, tap) for name, tap in item.sources if tap in self.LOGIT_READOUTS]
            if len(item.sources) < 2 or len(members) < 2:
                continue
            classes = [(f'{name}:{tap}', self.teacher_classes(teachers[name]))
                       for name, tap in members]
            known = [(text, count) for text, count in classes if count is not None]
            if len({count for _, count in known}) > 1:
                counts = ', '.join(f'{text}: {count} classes' for text, count in known)
                raise ValueError(
                    f'distill item {item.index}: its ensemble averages class scores of teachers '
                    f'that predict different classes ({counts}); '
                    'an average of scores is taken class by class, so every member must predict '
                    "the student's classes")

    # -- what an adapter provides ------------------------------------------------------------
    def build_model(self, cfg):
        raise NotImplementedError

    def check_pair(self, items, student, teacher, key):
        """Build-time checks of the :class:`~kdzoo.distiller.DistillItem` s against the student
        and one teacher (raise ``ValueError``): called once per teacher, with the items as that
        teacher sees them (:meth:`~kdzoo.distiller.DistillItem.on_teacher`: ``item.teacher`` its
        tap there); ``key``: where that teacher is set (``distill_cfg.teacher``,
        ``distill_cfg.teachers.<name>``), for the messages' fixes."""

    def data_labels(self, dataset_cfg, source):
        """The :class:`~kdzoo.adapters.labels.DataLabels` a dataset config of this task declares
        (``None``: the task checks no teacher labels)."""
        return None

    def teacher_classes(self, teacher):
        """The number of classes ``teacher`` predicts (``None``: unknown)."""
        return None

    def student_readout_paths(self, student, items):
        """Module paths of ``student`` whose outputs :meth:`student_step` reads (from
        ``distiller.student_taps``, recorded with the items' taps)."""
        return ()

    def student_step(self, inputs, data_samples):
        raise NotImplementedError

    def teacher_step(self, name, inputs):
        """Teacher ``name``'s readouts (:meth:`teacher_readout_names`) of its inputs."""
        raise NotImplementedError

    def run_model(self, model, inputs, data_samples, mode):
        raise NotImplementedError

    def targets(self, data_samples):
        return None

    def label_context(self, data_samples):
        """What every loss gets besides the two tensors: ``target`` (:meth:`targets`) and, when
        the adapter sets ``ignore_index`` (the student's ignored label: mmseg's decode head's), that
        label, so label-using losses skip exactly the pixels the student's own loss skips."""
        context = dict(target=self.targets(data_samples))
        if self.ignore_index is not None:
            context['ignore_index'] = self.ignore_index
        return context

    # -- the skeleton ------------------------------------------------------------------------
    @property
    def student(self):
        return self.distiller.student

    @property
    def teacher(self):
        """The first teacher (the only one of ``distill_cfg.teacher``)."""
        return self.distiller.teacher

    @property
    def teachers(self):
        """``{name: teacher}`` in the config's order (``{'teacher': ...}`` for
        ``distill_cfg.teacher``)."""
        return self.distiller.teachers

    def init_weights(self):
        """Initialise the student exactly as MMEngine's runner initialises it alone (its own
        ``init_weights``: pretrained backbones, head priors). ``BaseModule.init_weights`` would
        not reach it (the distiller is a plain ``nn.Module``). The teacher is left as built."""
        if hasattr(self.student, 'init_weights') and not getattr(self.student, 'is_init', False):
            self.student.init_weights()
        self._is_init = True

    def check_labels(self, teacher_cfg, teacher, student_data):
        """The teacher's labels (its class count; the classes and label encoding of the data its
        config declares) against the student's training data (adapters/labels.py)."""
        student = self.data_labels(student_data, "the student's train_dataloader.dataset")
        if student is None:
            return
        config = teacher_cfg.get('config') if isinstance(teacher_cfg, dict) else None
        declared = None
        if isinstance(config, str):
            name = config
            dataset = (read_config(config).get('train_dataloader') or {}).get('dataset')
            declared = self.data_labels(dataset, "its config's train_dataloader.dataset")
        else:
            name = '(a model dict)' if isinstance(config, dict) else f'({type(teacher).__name__})'
        recorded = getattr(teacher, 'checkpoint_dataset_meta', None) or {}
        if recorded.get('reduce_zero_label') is not None:  # its checkpoint says how it was trained
            declared = DataLabels(declared.classes if declared else None,
                                  bool(recorded['reduce_zero_label']),
                                  "its checkpoint's meta.dataset_meta")
        check_teacher_labels(student, declared, self.teacher_classes(teacher), name)

    def teacher_name(self, name=None):
        """``name``, checked, or the first teacher's name when ``None``."""
        if name is None:
            return next(iter(self.teachers))
        if name not in self.teachers:
            raise KeyError(f'no teacher named {name!r}; defined teachers: {list(self.teachers)}')
        return name

    def teacher_inputs(self, inputs, name=None):
        """The batch as teacher ``name``'s own data preprocessor would have normalised it (the
        first teacher's when ``None``)."""
        name = self.teacher_name(name)
        if not self.renormalise[name]:
            return inputs
        return renormalise(inputs, normalisation(self.data_preprocessor),
                           normalisation(getattr(self.teachers[name], 'data_preprocessor', None)))

    @contextmanager
    def running_teacher(self, inputs):
        """Run the teacher inside: without grad (the distiller keeps it in eval), under
        ``torch.autocast(inputs.device.type, dtype=teacher_autocast)`` when that is set."""
        precision = nullcontext() if self.teacher_autocast is None else torch.autocast(
            inputs.device.type, dtype=self.teacher_autocast)
        with torch.no_grad(), precision:
            yield

    def iteration(self):
        """The runner's iteration (from 0, MMEngine's message hub) or, outside a runner, the
        training steps taken so far; read once per step and passed to the distiller."""
        iteration = MessageHub.get_current_instance().get_info('iter')
        return self._steps if iteration is None else iteration

    @contextmanager
    def predicting_with_teacher(self, name=None):
        """Inside, ``predict`` / ``tensor`` modes run teacher ``name`` (the first when ``None``)
        instead of the student (the teacher check hook evaluates each teacher with the runner's
        own val loop this way)."""
        previous, self.use_teacher = self.use_teacher, self.teacher_name(name)
        try:
            yield self
        finally:
            self.use_teacher = previous

    def recorded_step(self, inputs, data_samples):
        """Run the student's training step and the teacher inside an open ``distiller.step()``:
        ``(task losses, student readouts, teacher readouts)``."""
        losses, student = self.student_step(inputs, data_samples)
        return losses, student, self.teacher_readouts(inputs)

    def run_teacher(self, name, inputs):
        """Teacher ``name``'s readouts of the preprocessed batch ``inputs``, computed (inside an
        open ``distiller.step()``: its taps record)."""
        teacher_inputs = self.teacher_inputs(inputs, name)
        with self.running_teacher(inputs):
            return self.teacher_step(name, teacher_inputs)

    def teacher_readouts(self, inputs):
        """The teachers' side of a step: ``{name: readouts}`` of every teacher an item reads
        (``distiller.needed``: a teacher no item reads does not run), each once. A teacher with a
        teacher-output cache, given the batch's stream keys (``stream_keys``, set per training
        batch by ``kdzoo.hooks.TeacherCacheHook``, used once), is read from it when it holds
        every sample of the batch — that teacher does not run — else computed and stored
        (:mod:`kdzoo.teacher_cache`). Without them: computed."""
        keys, self.stream_keys = self.stream_keys, None
        return {name: self.cached_teacher_readouts(name, inputs, keys)
                for name in self.distiller.needed}

    def cached_teacher_readouts(self, name, inputs, keys):
        """Teacher ``name``'s readouts of one step, through its cache when it has one."""
        cache = self.teacher_caches.get(name)
        if cache is None or keys is None:
            return self.run_teacher(name, inputs)
        stored = cache.read(*keys, inputs)
        if stored is not None:
            return stored
        readouts = self.run_teacher(name, inputs)
        cache.write(*keys, inputs, self.stored_readouts(name, readouts))
        if not cache.spec.exact:  # the values every later run reads: 16-bit, or top-k
            return cache.read(*keys, inputs, count=False) or readouts
        return readouts

    def stored_names(self, name):
        """The readouts of teacher ``name`` its cache stores, sorted (runs whose items name them
        in another order share a cache): those :meth:`teacher_step` returns and every tap the
        distiller records on it (the items' and ``cache.readouts``)."""
        return sorted(set(self.teacher_readout_names(name))
                      | set(self.distiller.tap_names['teachers'][name]))

    def teacher_readout_names(self, name):
        """The names :meth:`teacher_step` returns for teacher ``name`` (an adapter returning more
        says so)."""
        return list(self.distiller.readout_names['teachers'][name])

    def stored_readouts(self, name, readouts):
        """``{tap: value}`` of :meth:`stored_names`, from teacher ``name``'s ``readouts`` of the
        step and its taps."""
        taps = self.distiller.teacher_taps[name]
        return {tap: readouts[tap] if tap in readouts else taps.get(tap)
                for tap in self.stored_names(name)}


    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            self.distiller.finite_checks.verify()  # a previous step's, if parse_losses never ran
            iteration = self.iteration()
            with self.distiller.step():
                losses, student, teacher = self.recorded_step(inputs, data_samples)
                distill = self.distiller.distill_losses(
                    student, teacher, iteration=iteration, defer_checks=True,
                    **self.label_context(data_samples))
            if self.training:
                self._steps += 1
            if self.monitor:
                losses.update(monitor_values(losses, distill, student, teacher))
            losses.update(distill)
            return losses
        if mode not in MODES:
            raise ValueError(f'{type(self).__name__}: unknown mode {mode!r}; '
                             f'use one of {list(MODES)}')
        if self.use_teacher is not None:
            teacher_inputs = self.teacher_inputs(inputs, self.use_teacher)
            with self.running_teacher(inputs):
                return self.run_model(self.teachers[self.use_teacher], teacher_inputs,
                                      data_samples, mode)
        return self.run_model(self.student, inputs, data_samples, mode)

    def parse_losses(self, losses):
        """MMEngine's ``parse_losses`` (the loss to back-propagate and the values to log), with
        the step's one host read: every logged value and every check flag of the step
        (:class:`kdzoo.finite.PendingChecks`: each item's non-finite values, a label-using loss's
        label range) in one transfer. A tripped flag raises here
        (:class:`kdzoo.finite.NonFiniteError`, or the loss's ``ValueError``), before the backward
        pass; the logged values are returned as Python floats, so MMEngine's hooks read nothing
        more from the device.

        MMEngine calls it right after the ``loss`` forward in ``train_step`` (and its
        distributed wrapper's); losses of a ``loss`` forward never parsed are checked at the
        next ``loss`` forward.
        """
        loss, log_vars = super().parse_losses(losses)
        flags = self.distiller.finite_checks.flags()
        values = [v.detach().float().reshape(()).to(loss.device) for v in log_vars.values()]
        read = torch.stack(values + [f.to(loss.device).float() for f in flags]).tolist()
        self.distiller.finite_checks.report(read[len(values):])
        return loss, OrderedDict(zip(log_vars, read[:len(values)]))

    def describe_step(self, inputs, data_samples=None):
        """One line per distill item (taps, shapes, connector, loss value) for ``--dry-run``."""
        with torch.no_grad(), self.distiller.step():
            _, student, teacher = self.recorded_step(inputs, data_samples)
            return self.distiller.describe(student, teacher, iteration=self.iteration(),
                                           **self.label_context(data_samples))
