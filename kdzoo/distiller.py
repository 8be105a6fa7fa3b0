"""The distiller core: teacher + student + distill items -> named, weighted losses.

It knows nothing about tasks: adapters run the models and hand over their reserved readouts
(e.g. ``'logits'``); everything else is tapped by module path. One item::

    dict(student='layer4' or ['stage1', 'stage2'], teacher='stages.3',
         loss=dict(type='MSDCRDLoss', ...), weight=1.0, name=None,
         connector=None, warmup_iters=0, resize=False)

gives the loss key ``distill.loss_<name>``, ``name`` defaulting to
``<loss type without 'Loss', lowercased>_<item index>`` (e.g. ``distill.loss_msdcrd_0``).
With several teachers (``distill_cfg.teachers``) an item names its teacher: ``teacher='vit:logits'``
(``NAME:TAP``), or a list of them, an ensemble: the item's target is then the mean of those
readouts, weighted by ``teacher_weights`` (same shapes; :func:`ensemble`). The one teacher of
``distill_cfg.teacher`` is named ``'teacher'``; an item without ``NAME:`` reads the only teacher.
``resize=True`` accepts paired levels of different strides (detection's FPN levels, checked by
the mmdet adapter when the model is built), each pair then compared on one grid.
The teacher is frozen, kept in eval mode (BatchNorm statistics frozen even when the wrapper
trains; its caller runs it under ``torch.no_grad()``) and held outside the module tree, so it
never enters the state dict, the optimizer or a DDP wrapper. Connectors (learnable, student
side) live in ``self.connectors``.

Items are parsed and checked once, by :func:`parse_items` (types, finite non-negative ``weight``
and ``warmup_iters``), into :class:`DistillItem` s handed to the :class:`Distiller` (the loss's own
arguments are checked by the loss when the distiller builds it). Every step, a NaN or Inf in an
item's teacher readout, student value or loss stops training with
:class:`kdzoo.finite.NonFiniteError` naming the item, its taps, the side and the iteration (as
logged, from 1), without a host synchronisation per item: the items' checks are
:class:`kdzoo.finite.PendingChecks` read once, at the end of :meth:`Distiller.distill_losses`,
or, with ``defer_checks=True``, by the caller with its other values (the adapter skeleton reads
them with the step's logged values). The iteration is the caller's (the adapter skeleton reads
the runner's): the distiller reads no global state.
"""
import math
import numbers
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace

import torch
from torch import nn

from kdzoo.finite import PendingChecks
from kdzoo.registry import build
from kdzoo.taps import Taps
from kdzoo.teacher_names import SINGLE, side_name

ITEM_KEYS = {'student', 'teacher', 'teacher_weights', 'loss', 'weight', 'name', 'connector',
             'warmup_iters', 'resize'}


@dataclass(frozen=True)
class DistillItem:
    """One parsed distill item; ``student`` is a tuple of taps, fused by the connector if > 1;
    ``teacher`` the item's teacher as written (a tap, ``'NAME:TAP'``, or a tuple of them: an
    ensemble); ``sources`` the ``(teacher name, tap)`` pairs it reads (one, or an ensemble's
    members) and ``teacher_weights`` the ensemble's weights (``None``: equal); ``loss`` the loss's
    config dict (built by the :class:`Distiller`); ``resize``: paired levels of different strides
    accepted (docs/distill_cfg.md); ``index``: its place in ``distill_cfg.losses``."""
    name: str
    student: tuple
    teacher: object
    loss: dict
    weight: float
    connector: str
    warmup_iters: int
    resize: bool = False
    sources: tuple = ()
    teacher_weights: tuple = None
    index: int = 0

    def on_teacher(self, name):
        """The item as seen by one teacher's build-time checks: one per tap it reads on teacher
        ``name`` (``teacher`` that tap, ``sources`` that one pair)."""
        return [replace(self, teacher=tap, sources=((name, tap),), teacher_weights=None)
                for source, tap in self.sources if source == name]


def loss_type_name(loss_cfg):
    """``'kdzoo.MSDCRDLoss'`` -> ``'msdcrd'`` (a class type gives its ``__name__``)."""
    kind = loss_cfg['type']
    kind = kind if isinstance(kind, str) else kind.__name__
    kind = kind.split('.')[-1]
    return (kind[:-4] if kind.endswith('Loss') else kind).lower()


def parse_items(losses, teachers=(SINGLE,)):
    """Parse ``distill_cfg.losses``, a list of item dicts, into :class:`DistillItem` s with unique
    names; ``teachers``: the names of the config's teachers (:func:`kdzoo.teacher.teacher_configs`),
    which the items' ``NAME:TAP`` must name. A single dict (a forgotten ``[...]``) or a string
    item is refused by name: it would otherwise be read key by key or letter by letter."""
    if isinstance(losses, dict):
        raise TypeError('distill_cfg.losses must be a list of item dicts, got one dict; wrap it '
                        'in a list: losses=[dict(student=..., teacher=..., loss=dict(type=...))]')
    if not isinstance(losses, (list, tuple)):
        raise TypeError(f'distill_cfg.losses must be a list of item dicts, got '
                        f'{type(losses).__name__} {losses!r}')
    if not losses:
        raise ValueError('distill_cfg.losses is empty: give at least one distill item')
    items = [parse_item(index, cfg, tuple(teachers)) for index, cfg in enumerate(losses)]
    names = [item.name for item in items]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f'distill items share the names {duplicated}; give each a unique name=')
    return items


def check_loss_cfg(index, loss):
    """An item's ``loss`` is a dict with a ``type`` (a string such as ``'KDLoss'`` is not)."""
    if isinstance(loss, str):
        raise TypeError(f"distill item {index}: loss must be a dict, got the string {loss!r}; "
                        f"write loss=dict(type={loss!r})")
    if not isinstance(loss, dict) or 'type' not in loss:
        raise TypeError(f'distill item {index}: loss must be a dict with a type, e.g. '
                        f"loss=dict(type='KDLoss', tau=4.0), got {loss!r}")


def number(index, key, value, kind):
    """``value`` as a finite number ``>= 0`` of ``kind`` (float or int); else a ValueError naming
    the item and the key. Booleans and strings are refused (``'x2'``, ``True`` are typos)."""
    ok = (isinstance(value, numbers.Integral) if kind is int else isinstance(value, numbers.Real))
    if not ok or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        what = 'an integer' if kind is int else 'a finite number'
        raise ValueError(f'distill item {index}: {key} must be {what} >= 0, got {value!r}')
    return kind(value)


def parse_source(index, text, teachers):
    """``(teacher name, tap)`` of an item's ``'NAME:TAP'`` or ``'TAP'`` (the only teacher's)."""
    if not isinstance(text, str) or not text:
        raise ValueError(f'distill item {index}: teacher must be a tap name (\'NAME:TAP\' with '
                         f'several teachers) or a list of them (an ensemble), got {text!r}')
    name, colon, tap = text.partition(':')
    if not colon:
        if len(teachers) > 1:
            raise ValueError(
                f'distill item {index}: teacher {text!r} names no teacher, and the config has '
                f'{len(teachers)}: write it as \'NAME:{text}\' with NAME one of '
                f'{list(teachers)}')
        return teachers[0], text
    if not tap:
        raise ValueError(f'distill item {index}: teacher {text!r} names no tap after {name!r}:')
    if name not in teachers:
        raise ValueError(
            f'distill item {index}: teacher {text!r} reads a tap of teacher {name!r}, which the '
            f'config does not define.\nunknown teacher {name!r}; defined teachers: '
            f'{list(teachers)}')
    return name, tap


def parse_ensemble(index, cfg, teachers):
    """``(sources, teacher_weights)`` of an item's ``teacher`` and ``teacher_weights``."""
    written, weights = cfg['teacher'], cfg.get('teacher_weights')
    if isinstance(written, str):
        if weights is not None:
            raise ValueError(f'distill item {index}: teacher_weights weigh the members of an '
                             f'ensemble (teacher=[...]), but teacher is one tap {written!r}; '
                             'remove teacher_weights')
        return (parse_source(index, written, teachers),), None
    if not isinstance(written, (list, tuple)) or len(written) < 2:
        raise ValueError(f'distill item {index}: teacher must be a tap name or a list of two or '
                         f'more (an ensemble), got {written!r}')
    sources = tuple(parse_source(index, text, teachers) for text in written)
    repeated = sorted({f'{n}:{t}' for n, t in sources if sources.count((n, t)) > 1})
    if repeated:
        raise ValueError(f'distill item {index}: the ensemble lists {repeated} twice; give each '
                         'member once (teacher_weights weigh them)')
    if weights is None:
        return sources, None
    if not isinstance(weights, (list, tuple)) or len(weights) != len(sources):
        raise ValueError(f'distill item {index}: teacher_weights must be a list of '
                         f'{len(sources)} numbers, one per member of teacher={list(written)}, got '
                         f'{weights!r}')
    weights = tuple(number(index, 'teacher_weights', w, float) for w in weights)
    unweighted = [text for text, w in zip(written, weights) if w == 0]
    if unweighted:
        raise ValueError(f'distill item {index}: teacher_weights give {unweighted} weight 0: '
                         'their teachers would run for nothing; remove them from the ensemble')
    return sources, weights


def parse_item(index, cfg, teachers=(SINGLE,)):
    """Validate one item dict and return a :class:`DistillItem`."""
    if not isinstance(cfg, dict):
        raise TypeError(f'distill item {index} must be a dict(student=..., teacher=..., '
                        f'loss=dict(type=...)), got {type(cfg).__name__} {cfg!r}')
    unknown = set(cfg) - ITEM_KEYS
    if unknown:
        raise ValueError(f'distill item {index}: unknown keys {sorted(unknown)}; '
                         f'allowed: {sorted(ITEM_KEYS)}')
    for key in ('student', 'teacher', 'loss'):
        if key not in cfg:
            raise ValueError(f'distill item {index}: missing {key!r}')
    check_loss_cfg(index, cfg['loss'])
    student = cfg['student']
    student = (student,) if isinstance(student, str) else tuple(student)
    if not student or not all(isinstance(s, str) for s in student):
        raise ValueError(f'distill item {index}: student must be a tap name or a list of them, '
                         f'got {cfg["student"]!r}')
    if len(student) > 1 and not cfg.get('connector'):
        raise ValueError(f'distill item {index}: {len(student)} student taps {list(student)} need '
                         "a connector that fuses them (e.g. connector='msdf')")
    sources, teacher_weights = parse_ensemble(index, cfg, teachers)
    written = cfg['teacher'] if isinstance(cfg['teacher'], str) else tuple(cfg['teacher'])
    name = cfg.get('name') or f'{loss_type_name(cfg["loss"])}_{index}'
    resize = cfg.get('resize', False)
    if not isinstance(resize, bool):
        raise ValueError(f'distill item {index}: resize must be True or False, got {resize!r}')
    if not isinstance(name, str) or '.' in name or not name:
        raise ValueError(f'distill item {index}: name must be a non-empty string without dots, '
                         f'got {name!r}')
    return DistillItem(
        name=name, student=student, teacher=written, loss=cfg['loss'],
        weight=number(index, 'weight', cfg.get('weight', 1.0), float),
        connector=cfg.get('connector'),
        warmup_iters=number(index, 'warmup_iters', cfg.get('warmup_iters', 0), int),
        resize=resize, sources=sources, teacher_weights=teacher_weights, index=index)


def build_loss(index, item, cfg):
    """Build an item's loss; an invalid argument (``KDLoss(tau=0)``) is reported with the item."""
    try:
        return build(cfg)
    except (TypeError, ValueError) as err:
        raise type(err)(f'distill item {index} ({item.name!r}): {err}') from err


def warmup_factor(iteration, warmup_iters):
    """Linear ramp of the weight: ``min(1, (iteration + 1) / warmup_iters)``; 1 without warm-up."""
    if warmup_iters <= 0:
        return 1.0
    return min(1.0, (iteration + 1) / warmup_iters)


def is_sequence(value):
    return isinstance(value, (list, tuple))


def shape_of(value):
    """Shapes for messages: a tuple, or a list of them for a sequence of tensors."""
    if is_sequence(value):
        return [shape_of(v) for v in value]
    return tuple(value.shape) if torch.is_tensor(value) else type(value).__name__


def pair_values(item, student, teacher):
    """Pair a student and a teacher value element-wise: sequences (FPN levels, per-call lists)
    level by level, with an error naming both lengths when they differ."""
    if is_sequence(student) != is_sequence(teacher):
        raise ValueError(
            f'distill item {item.name!r}: cannot pair student {list(item.student)} output '
            f'{shape_of(student)} with teacher {item.teacher!r} output {shape_of(teacher)}: '
            'one is a sequence of tensors and the other is not')
    if not is_sequence(student):
        return [(student, teacher)]
    if len(student) != len(teacher):
        raise ValueError(
            f'distill item {item.name!r}: student {list(item.student)} gives {len(student)} '
            f'tensors but teacher {item.teacher!r} gives {len(teacher)}; they are paired '
            'element-wise (e.g. FPN level i with level i), so the lengths must match')
    return list(zip(student, teacher))


def teacher_text(item):
    """What an item reads, for ``--dry-run``: ``teacher 'logits'`` (the one teacher),
    ``teacher vit:'logits'``, or ``ensemble of cnn:'logits' + vit:'logits' (weights 1, 1)``."""
    texts = [repr(tap) if name == SINGLE else f'{name}:{tap!r}' for name, tap in item.sources]
    if len(texts) == 1:
        return f'teacher {texts[0]}'
    weights = ', '.join(f'{w:g}' for w in item.teacher_weights or (1.0,) * len(texts))
    return f'ensemble of {" + ".join(texts)} (weights {weights})'


def ensemble(item, values):
    """The weighted mean ``sum_i w_i x_i / sum_i w_i`` of an ensemble item's member readouts
    (``item.teacher_weights``, equal when ``None``), level by level for sequences (FPN levels).
    Members of other shapes are a ``ValueError`` naming both (no layout is converted: averaging
    a token map with a feature map would mean nothing)."""
    weights = item.teacher_weights or (1.0,) * len(values)
    first = values[0]
    for (name, tap), value in zip(item.sources[1:], values[1:]):
        if shape_of(value) != shape_of(first):
            raise ValueError(
                f'distill item {item.name!r}: its ensemble averages {item.sources[0][0]}:'
                f'{item.sources[0][1]} of shape {shape_of(first)} with {name}:{tap} of shape '
                f'{shape_of(value)}; members must have the same shape (the same classes for '
                'logits, the same grid and width for features: average a common readout such as '
                "'logits', or give each member its own item)")
    total = sum(weights)
    if is_sequence(first):
        return type(first)(sum(w * v[level] for w, v in zip(weights, values)) / total
                           for level in range(len(first)))
    return sum(w * v for w, v in zip(weights, values)) / total


class Distiller(nn.Module):
    """Wire a student, frozen teachers, connectors and losses.

    Args:
        student: the student model (a submodule: trained, saved, optimized).
        teachers: ``{name: teacher model}`` (an ``nn.Module`` alone is the teacher named
            ``'teacher'``); each frozen, in eval, held outside the module tree.
        items: the :class:`DistillItem` s of :func:`parse_items`.
        connectors: ``dict(name=cfg or nn.Module)``; items reference them by name or by a dotted
            path into one (``'msdf.branches.0'``).
        student_reserved / teacher_reserved: readout names the adapter provides itself (e.g.
            ``'logits'``); any other tap is a module path, checked here.
        student_readout_paths: student module paths the adapter reads its own readouts from in
            its step (e.g. mmdet's dense head for ``'cls_scores'``): recorded with the items'
            taps, read with ``student_taps.get(path)``.
        teacher_stored: ``{name: taps}`` recorded on teacher ``name`` besides the items'
            (reserved readouts or module paths): what a teacher-output cache stores for other
            runs (:mod:`kdzoo.teacher_cache`).

    ``tap_names['student']`` lists the taps the items read on the student, each once, in item
    order; ``tap_names['teachers'][name]`` those they read on teacher ``name`` (then its
    ``teacher_stored``); ``readout_names`` the same lists restricted to the reserved readouts,
    which the adapter provides. ``teacher_taps[name]`` records teacher ``name``'s module paths.
    ``needed`` lists the teachers some item reads, in the teachers' order: a step runs those only.
    One training step records between the taps and computes the losses inside
    ``with distiller.step():`` (see :meth:`step`).
    """

    def __init__(self, student, teachers, items, connectors=None, student_reserved=(),
                 teacher_reserved=(), student_readout_paths=(), teacher_stored=None):
        super().__init__()
        if isinstance(teachers, nn.Module):
            teachers = {SINGLE: teachers}
        self.items = list(items)
        self.student = student
        for teacher in teachers.values():
            teacher.requires_grad_(False)
            teacher.eval()
        object.__setattr__(self, 'teachers', dict(teachers))
        self.connectors = nn.ModuleDict({
            name: cfg if isinstance(cfg, nn.Module) else build(cfg)
            for name, cfg in (connectors or {}).items()})
        self.losses = nn.ModuleDict({
            item.name: build_loss(index, item, item.loss) for index, item in enumerate(self.items)})
        for item in self.items:
            if item.connector:
                self.connector(item.connector)
        stored = teacher_stored or {}
        read = {name: [tap for item in self.items for n, tap in item.sources if n == name]
                for name in self.teachers}
        self.needed = [name for name in self.teachers if read[name]]
        student_taps = list(dict.fromkeys(t for item in self.items for t in item.student))
        teacher_taps = {name: list(dict.fromkeys(read[name] + list(stored.get(name, ()))))
                        for name in self.teachers}
        self.tap_names = {'student': student_taps, 'teachers': teacher_taps}
        self.readout_names = {
            'student': [t for t in student_taps if t in student_reserved],
            'teachers': {name: [t for t in taps if t in teacher_reserved]
                         for name, taps in teacher_taps.items()}}
        self.student_taps = Taps(
            student, [t for t in student_taps if t not in student_reserved]
            + list(student_readout_paths), 'student', frozenset(student_reserved))
        self.teacher_taps = {
            name: Taps(self.teachers[name], [t for t in taps if t not in teacher_reserved],
                       side_name(name), frozenset(teacher_reserved))
            for name, taps in teacher_taps.items()}
        self.finite_checks = PendingChecks()  # the items' non-finite checks not read yet

    @property
    def teacher(self):
        """The first teacher (the only one of ``distill_cfg.teacher``)."""
        return next(iter(self.teachers.values()))

    def connector(self, name):
        """The connector called ``name`` (a dotted path reaches into a connector's submodules)."""
        try:
            return self.connectors.get_submodule(name)
        except AttributeError:
            raise ValueError(
                f'connector {name!r} is not defined; defined connectors: '
                f'{sorted(self.connectors.keys()) or "none"} (add it to distill_cfg.connectors)'
            ) from None

    def train(self, mode=True):
        super().train(mode)
        for teacher in self.teachers.values():
            teacher.eval()
        return self

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        for teacher in self.teachers.values():
            teacher._apply(fn, *args, **kwargs)
        return self

    @contextmanager
    def step(self):
        """One distillation step: the taps of both models record inside the block (run the
        student, and the teacher under ``torch.no_grad()``, there); on leaving it they stop and
        drop their records, and every connector module with an ``end_step()`` method (a per-step
        cache, e.g. a stage branch shared by two items) is told the step ended. Compute
        :meth:`distill_losses` / :meth:`describe` inside the block."""
        try:
            with ExitStack() as recording:
                for taps in [self.student_taps, *self.teacher_taps.values()]:
                    recording.enter_context(taps.recording())
                yield self
        finally:
            for module in self.connectors.modules():
                if hasattr(module, 'end_step'):
                    module.end_step()

    def _lookup(self, taps, readouts, name):
        return readouts[name] if name in readouts else taps.get(name)

    def teacher_members(self, item, teacher_readouts):
        """The values of the item's sources (one, or an ensemble's members), in order."""
        return [self._lookup(self.teacher_taps[name], teacher_readouts.get(name, {}), tap)
                for name, tap in item.sources]

    def teacher_value(self, item, teacher_readouts):
        """The item's teacher value: its one source's, or its ensemble's weighted mean."""
        values = self.teacher_members(item, teacher_readouts)
        return values[0] if len(values) == 1 else ensemble(item, values)

    def item_values(self, item, student_readouts, teacher_readouts):
        """The (student, teacher) tensor pairs of one item, the connector applied to the student;
        ``teacher_readouts``: ``{teacher name: {reserved name: tensor}}``."""
        student = [self._lookup(self.student_taps, student_readouts, t) for t in item.student]
        teacher = self.teacher_value(item, teacher_readouts)
        connector = self.connector(item.connector) if item.connector else None
        if len(student) > 1:
            return [(connector(student), teacher)]
        pairs = pair_values(item, student[0], teacher)
        if connector is not None:
            pairs = [(connector(s), t) for s, t in pairs]
        return pairs

    def item_loss(self, item, pairs, ctx, iteration):
        """Unweighted loss of one item: the mean over its pairs; its non-finite check (teacher
        readout, student value, loss) is added to :attr:`finite_checks`, not read. The losses get
        ``checks=`` that object too: a check of their own (a label-using loss's label range)
        is read with the step's flags."""
        loss_fn = self.losses[item.name]
        loss = sum(loss_fn(s, t, checks=self.finite_checks, **ctx) for s, t in pairs) / len(pairs)
        self.finite_checks.add(
            {'teacher': [t for _, t in pairs], 'student': [s for s, _ in pairs], 'loss': loss},
            f'distill item {item.name!r} (student taps {list(item.student)}, teacher tap '
            f'{item.teacher!r}) at iteration {iteration + 1}')
        return loss

    def distill_losses(self, student_readouts=None, teacher_readouts=None, *, iteration,
                       defer_checks=False, **ctx):
        """Weighted losses ``{'distill.loss_<name>': tensor}`` of the step being recorded.

        ``student_readouts``: ``{reserved name: tensor}`` the adapter read in this step;
        ``teacher_readouts``: ``{teacher name: {reserved name: tensor}}``. ``iteration``: the
        training iteration, from 0 (the warm-up's ramp; the messages name it from 1, as logged).
        ``ctx`` (e.g. ``target=labels``) is passed to every loss. A NaN or Inf in an item raises
        :class:`~kdzoo.finite.NonFiniteError` here, after one read of every item's flag; with
        ``defer_checks=True`` the checks stay in :attr:`finite_checks` for the caller to read
        (``flags()`` / ``report()``, or ``verify()``).
        """
        student_readouts, teacher_readouts = student_readouts or {}, teacher_readouts or {}
        losses = {}
        try:
            for item in self.items:
                pairs = self.item_values(item, student_readouts, teacher_readouts)
                scale = item.weight * warmup_factor(iteration, item.warmup_iters)
                losses[f'distill.loss_{item.name}'] = scale * self.item_loss(
                    item, pairs, ctx, iteration)
        except BaseException:
            self.finite_checks.clear()  # a step that failed leaves no checks behind
            raise
        if not defer_checks:
            self.finite_checks.verify()
        return losses

    def describe(self, student_readouts=None, teacher_readouts=None, *, iteration, **ctx):
        """One line per item for ``--dry-run``: taps, shapes, connector, unweighted loss value
        (``iteration`` as in :meth:`distill_losses`)."""
        student_readouts, teacher_readouts = student_readouts or {}, teacher_readouts or {}
        lines = []
        for item in self.items:
            raw_s = [self._lookup(self.student_taps, student_readouts, t) for t in item.student]
            raw_t = self.teacher_members(item, teacher_readouts)
            raw_t = raw_t[0] if len(raw_t) == 1 else raw_t
            pairs = self.item_values(item, student_readouts, teacher_readouts)
            with torch.no_grad():
                value = self.item_loss(item, pairs, ctx, iteration)
            self.finite_checks.verify()
            lines.append(
                f'{item.name}: student {list(item.student)} {shape_of(raw_s)} -> '
                f'connector {item.connector or "none"} -> {shape_of([p[0] for p in pairs])} | '
                f'{teacher_text(item)} {shape_of(raw_t)} | '
                f'{type(self.losses[item.name]).__name__} = {value.item():.6g} '
                f'(weight {item.weight:g}, warmup_iters {item.warmup_iters})')
        return lines
