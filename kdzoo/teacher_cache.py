"""The teacher-output cache: the teacher's readouts of a run, computed once and replayed exactly
(docs/teacher_cache.md).

kdzoo's training stream makes every augmented sample a pure function of ``(seed, position,
index)`` (:mod:`kdzoo.data_stream`), so the teacher's readouts in a run are a pure function of the
teacher, the data and its pipeline, the seed and the positions. A run with
``distill_cfg.teacher.cache`` stores, per sample, every readout its step takes from the teacher;
a later run of the same :data:`MANIFEST_FIELDS` reads them instead of running the teacher. With
several teachers, each teacher's ``distill_cfg.teachers.<name>.cache`` is a cache of its own, in
a folder of its own (docs/teacher_cache.md, "Several teachers").
FKD (Shen & Xing, ECCV 2022) replays stored crops and top-k soft labels of ImageNet the same way;
a cache keyed by the data set index alone (torchdistill's, removed) is wrong under random
augmentation, which is why the position is the key here.

A cache folder holds::

    manifest.json               what its readouts are a function of, written once
    shard-r<rank>-w<world>-<first>-<last>-<rows>-<sha>.pt
                                sample rows (positions <first>..<last>) of process <rank> of
                                <world>: positions p with p % world == rank only

A shard is a list of chunks, one per stored batch: ``positions``, ``indices`` (the data set
index at each position, checked when read), ``input_shape`` (the preprocessed batch's, padding
included: a row is read only into a batch of that shape) and the readouts' leaves (tensors with
the batch first, the structure of tuples / lists kept as ``specs``). It is written to a temporary
name, flushed to disk and renamed, so a write killed midway leaves no shard; ``<sha>`` is the
first 16 hex digits of the sha256 of its bytes, checked when it is loaded.

Storage: ``dtype`` (``float32``: the run is bit-identical to the live one; ``float16`` /
``bfloat16``: half the bytes), ``topk`` (softmax logit readouts, :data:`TOPK_READOUTS`: the ``K``
largest logits and their indices, the other classes filled with one value per sample such that
their softmax mass at temperature 1 is exactly the one they had, spread uniformly).
"""
import bisect
import hashlib
import io
import json
import math
import os
import os.path as osp
import re
import shutil
from dataclasses import dataclass

import torch

from kdzoo.hashing import qualified_name, text_sha
from kdzoo.teacher import teacher_configs
from kdzoo.teacher_names import teacher_key

MANIFEST = 'manifest.json'
FORMAT = 1
DTYPES = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}
TOPK_READOUTS = ('logits', 'dense_logits')  # softmax over dim 1 (cls, seg); not mmdet's scores
CACHE_KEYS = ('dir', 'dtype', 'topk', 'readouts')
SHARD_BYTES = 256 << 20  # a shard is written once its rows hold this many bytes (and at the end)
SHARD_NAME = re.compile(r'^shard-r(?P<rank>\d+)-w(?P<world>\d+)-(?P<first>\d+)-(?P<last>\d+)-'
                        r'(?P<rows>\d+)-(?P<sha>[0-9a-f]{16})\.pt$')

# What the readouts are a function of, in the order a difference is named, and how it is said.
MANIFEST_FIELDS = {
    'format': 'the cache format',
    'kdzoo_version': 'the kdzoo version',
    'task': 'the task',
    'teacher_checkpoint': 'the teacher checkpoint (its bytes)',
    'teacher_config': "the teacher's config (model, cfg_options)",
    'teacher_weights': "the teacher's weights",
    'teacher_inputs': "the teacher's inputs (normalisation, autocast)",
    'data': 'the training data (its files or their sizes)',
    'pipeline': 'the training data set, pipeline or sampler (train_dataloader)',
    'preprocessor': "the student's data preprocessor",
    'seed': 'the seed',
    'readouts': 'the readouts stored',
    'dtype': 'the storage dtype',
    'topk': 'topk',
}
LAYOUT_FIELDS = ('batch_size', 'world_size')  # recorded; another layout reads rows of its shape


class TeacherCacheError(RuntimeError):
    """A cache that cannot serve this run; the message's last line names the cache folder and
    what differs."""


def fail(directory, text, differs):
    raise TeacherCacheError(f'{text}\nteacher cache {directory}: {differs}')


@dataclass(frozen=True)
class CacheSpec:
    """``distill_cfg.teacher.cache``: ``dir``, the storage ``dtype``, ``topk`` (or ``None``) and
    ``readouts``: teacher taps stored besides those the run's items read (the experiment tools
    store the taps of all the arms sharing one cache)."""
    dir: str
    dtype: str = 'float32'
    topk: int = None
    readouts: tuple = ()

    @property
    def exact(self):
        """Whether a run reading it is bit-identical to the live run (float32, all classes)."""
        return self.dtype == 'float32' and self.topk is None


def cache_spec(value, key='distill_cfg.teacher.cache'):
    """The :class:`CacheSpec` of a teacher's ``cache`` setting ``value`` (``None`` when not set);
    a plain string is the folder (``float32``). Raises ``ValueError`` naming a wrong key or value
    under ``key``, the setting's dotted key (``distill_cfg.teachers.<name>.cache`` for a teacher
    of several)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dict(dir=value)
    if not isinstance(value, dict):
        raise ValueError(f'{key} must be a folder (str) or dict(dir=..., '
                         f"dtype='float32', topk=None, readouts=[]), got {value!r}")
    unknown = sorted(set(value) - set(CACHE_KEYS))
    if unknown:
        raise ValueError(f'{key}: unknown keys {unknown}; allowed keys {list(CACHE_KEYS)}')
    directory = value.get('dir')
    if not isinstance(directory, str) or not directory:
        raise ValueError(f'{key}.dir must be a folder path, got {directory!r}')
    dtype = value.get('dtype', 'float32')
    if dtype not in DTYPES:
        raise ValueError(f'{key}.dtype must be one of {list(DTYPES)}, got {dtype!r}')
    topk = value.get('topk')
    if topk is not None and (isinstance(topk, bool) or not isinstance(topk, int) or topk < 1):
        raise ValueError(f'{key}.topk must be a positive int or None, got {topk!r}')
    readouts = value.get('readouts') or ()
    if isinstance(readouts, str) or not all(isinstance(r, str) for r in readouts):
        raise ValueError(f'{key}.readouts must be a list of teacher taps, got {readouts!r}')
    return CacheSpec(directory, dtype, topk, tuple(readouts))


def configured_caches(cfg):
    """``[(dotted key of the teacher's settings, teacher name, its dict, CacheSpec or None)]`` of
    a config (a dict: loaded, resolved or wrapped), one per teacher given as a dict, in the
    config's order: from ``model.distill_cfg`` (the explicit form, a wrapped config), else its
    top-level ``distill_cfg``; ``[]`` when it has none. The one reader of a teacher's ``cache``
    setting in a config (``distill_cfg.teacher.cache``, ``distill_cfg.teachers.<name>.cache``)."""
    for key, holder in (('model.distill_cfg', cfg.get('model')), ('distill_cfg', cfg)):
        distill_cfg = holder.get('distill_cfg') if hasattr(holder, 'get') else None  # a Config
        if not isinstance(distill_cfg, dict) or not (
                'teacher' in distill_cfg or 'teachers' in distill_cfg):
            continue
        multi = 'teachers' in distill_cfg
        prefix = key.rpartition('distill_cfg')[0]
        return [(prefix + teacher_key(name, multi), name, teacher,
                 cache_spec(teacher.get('cache'), f'{teacher_key(name, multi)}.cache'))
                for name, teacher in teacher_configs(distill_cfg).items()
                if isinstance(teacher, dict)]
    return []


# -- readout structures -----------------------------------------------------------------------
def flatten(value):
    """``(leaves, spec)`` of a readout: a tensor, or tuples / lists of them (an FPN's levels, a
    module called several times)."""
    if torch.is_tensor(value):
        return [value], 't'
    if isinstance(value, (list, tuple)):
        leaves, specs = [], []
        for item in value:
            sub, spec = flatten(item)
            leaves += sub
            specs.append(spec)
        return leaves, ('tuple' if isinstance(value, tuple) else 'list', specs)
    raise TypeError(f'a teacher readout of type {type(value).__name__} cannot be cached (only '
                    'tensors, and tuples / lists of them): remove the teacher cache setting, or '
                    'read another tap')


def unflatten(leaves, spec):
    """The readout of :func:`flatten`'s ``(leaves, spec)`` (``leaves`` an iterator)."""
    if spec == 't':
        return next(leaves)
    kind, specs = spec
    items = [unflatten(leaves, s) for s in specs]
    return tuple(items) if kind == 'tuple' else items


# -- top-k storage of softmax logits ----------------------------------------------------------
def topk_compress(logits, k):
    """``(values, indices, fill)`` of ``(B, C, ...)`` logits: the ``k`` largest over dim 1, their
    class indices, and per sample / location the one logit that gives each other class the same
    share of their softmax mass at temperature 1: ``fill = log(sum_rest exp z) - log(C - k)``."""
    num_classes = logits.shape[1]
    values, indices = logits.float().topk(k, dim=1)
    everything = torch.logsumexp(logits.float(), dim=1)
    top = torch.logsumexp(values, dim=1)
    rest = everything + torch.log1p(-torch.exp(top - everything).clamp(max=1.0))
    fill = rest - math.log(num_classes - k)
    # no mass left in float32: a finite logit far below the others (its softmax is then 0)
    fill = torch.where(torch.isfinite(fill), fill, values.amin(dim=1) - 1e4)
    index_dtype = torch.int16 if num_classes <= 2 ** 15 else torch.int32
    return values, indices.to(index_dtype), fill


def topk_expand(values, indices, fill, num_classes, dtype):
    """The full ``(B, C, ...)`` logits of :func:`topk_compress`'s parts, in ``dtype``."""
    shape = (fill.shape[0], num_classes) + tuple(fill.shape[1:])
    full = fill.to(dtype).unsqueeze(1).expand(shape).clone()
    return full.scatter_(1, indices.long(), values.to(dtype))


def sample_bytes(readouts, spec):
    """Bytes one sample of ``readouts`` (a batch's, ``{name: value}``) takes in the cache."""
    size = 16  # position and index
    itemsize = torch.empty((), dtype=DTYPES[spec.dtype]).element_size()
    for name, value in readouts.items():
        for leaf in flatten(value)[0]:
            per_sample = leaf[0].numel()
            if spec.topk and name in TOPK_READOUTS and spec.topk < leaf.shape[1]:
                locations = per_sample // leaf.shape[1]
                index = 2 if leaf.shape[1] <= 2 ** 15 else 4
                size += locations * (spec.topk * (itemsize + index) + 4)
            else:
                size += per_sample * itemsize
    return size


# -- the cache --------------------------------------------------------------------------------
def write_atomically(path, data, exclusive=False):
    """Write ``data`` (bytes) to ``path`` through a temporary file, flushed and renamed: a reader
    sees the whole file or none. ``exclusive``: an existing ``path`` is kept (hard-linked, not
    renamed). A write that fails removes its temporary file."""
    temporary = f'{path}.{os.getpid()}.tmp'
    try:
        with open(temporary, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
            os.unlink(temporary)
        else:
            os.replace(temporary, path)
    except BaseException:
        if osp.exists(temporary):
            os.unlink(temporary)
        raise


def human_bytes(size):
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if size < 1024 or unit == 'TiB':
            return f'{size:.1f} {unit}' if unit != 'B' else f'{int(size)} B'
        size /= 1024


def differing_field(old, new):
    """The first :data:`MANIFEST_FIELDS` key whose values differ, or ``None``."""
    for key in MANIFEST_FIELDS:
        if old.get(key) != new.get(key):
            return key
    return None


class TeacherCache:
    """One run's view of a cache folder (this process's rank): :meth:`open`, then per training
    batch :meth:`read` (the stored readouts, or ``None``: run the teacher) and :meth:`write`;
    :meth:`flush` at the end.

    Args:
        spec: the :class:`CacheSpec`.
        manifest: this run's :data:`MANIFEST_FIELDS` and :data:`LAYOUT_FIELDS`.
        rank: this process's rank (shards it writes carry it).
        log: where the cache says what it does (a callable taking a line).
        setting: the cache's setting in the config, named in messages as the one to change
            (``distill_cfg.teachers.<name>.cache`` for a teacher of several).
    """

    def __init__(self, spec, manifest, rank=0, log=print, setting='distill_cfg.teacher.cache'):
        self.spec = spec
        self.setting = setting
        self.dir = spec.dir
        self.manifest = dict(manifest)
        self.rank = rank
        self.log = log
        self.names = list(manifest['readouts'])
        self.set_shards([])  # [(first, last, rows, path)] known to hold rows
        self.loaded = {}  # path -> {position: (chunk, row)} and its chunks, most recent last
        self.buffer, self.buffer_bytes, self.buffered = [], 0, {}  # buffered: position -> (c, row)
        self.counts = dict(read=0, computed=0, written=0)

    # -- opening ------------------------------------------------------------------------------
    def open(self):
        """Create the folder and its manifest, or check an existing manifest against this run's
        (a difference raises :class:`TeacherCacheError` naming it); find the shards."""
        os.makedirs(self.dir, exist_ok=True)
        path = osp.join(self.dir, MANIFEST)
        if not osp.isfile(path):
            if any(SHARD_NAME.match(name) for name in os.listdir(self.dir)):
                fail(self.dir, f'{self.dir} holds cache shards but no {MANIFEST}: nothing says '
                     'what they were computed from. Remove the folder to rebuild the cache, or '
                     f'give {self.setting} another dir.', f'no {MANIFEST}')
            # created exclusively: of two runs starting on an empty folder, one writes the
            # manifest and the other checks its own against it
            write_atomically(path, json.dumps(self.manifest, indent=1, sort_keys=True).encode(),
                             exclusive=True)
        with open(path) as f:
                try:
                    stored = json.load(f)
                except json.JSONDecodeError as err:
                    fail(self.dir, f'{path} is not a cache manifest ({err}). Remove the folder '
                         f'to rebuild the cache, or give {self.setting} another dir.',
                         'its manifest cannot be read')
        self.check_manifest(stored)
        self.written_by = {k: stored.get(k) for k in LAYOUT_FIELDS}
        self.set_shards(self.find_shards())
        return self

    def set_shards(self, shards):
        self.shards = sorted(shards)
        self.index = ([first for first, *_ in self.shards],
                      max((last - first for first, last, *_ in self.shards), default=0))

    def check_manifest(self, stored):
        key = differing_field(stored, self.manifest)
        if key is None:
            return
        what = MANIFEST_FIELDS[key]
        fail(self.dir,
             f'The teacher cache in {self.dir} was written for another setup: {what} differs '
             f'(cache: {stored.get(key)!r}, this run: {self.manifest.get(key)!r}). A cache is '
             'read only by runs whose teacher, data, pipeline, seed and storage are the ones it '
             f'was written with. Remove the folder (rm -r {self.dir}) to rebuild it with this '
             f'run, or give {self.setting} another dir.',
             f'{what} differs')

    def find_shards(self):
        for name in os.listdir(self.dir):
            match = SHARD_NAME.match(name)
            if match:
                yield (int(match['first']), int(match['last']), int(match['rows']),
                       osp.join(self.dir, name))

    def cached_rows(self, end):
        """How many rows the shards hold at positions below ``end``: from their names, but a shard
        reaching past ``end`` (written by a longer run) is loaded to count its rows below it."""
        count = 0
        for first, last, rows, path in self.shards:
            if last < end:
                count += rows
            elif first < end:
                count += sum(position < end for position in self.load(path)[0])
        return count

    def check_space(self, bytes_per_sample, samples_to_write, reserved=0):
        """Print the expected size of what this run will write, and refuse (before training) a
        cache the free disk cannot hold; ``reserved``: the bytes the run's other caches on the
        same disk (other teachers') will write. Returns the expected bytes."""
        expected = bytes_per_sample * samples_to_write
        free = shutil.disk_usage(self.dir).free - reserved
        others = (f', after {human_bytes(reserved)} for the other teacher caches of this run'
                  if reserved else '')
        self.log(f'teacher cache {self.dir}: writing up to {samples_to_write} samples x '
                 f'{human_bytes(bytes_per_sample)} = {human_bytes(expected)} '
                 f'({human_bytes(free)} free{others})')
        if expected > free:
            fail(self.dir,
                 f'The teacher cache would need about {human_bytes(expected)} for this run and '
                 f'the disk of {self.dir} has {human_bytes(free)} free{others}. Free space, '
                 'choose a '
                 'folder on a larger disk, or store less: dtype=\'float16\', topk=K for logit '
                 'readouts (docs/teacher_cache.md).',
                 f'needs {human_bytes(expected)}, {human_bytes(free)} free{others}')
        return expected

    # -- reading ------------------------------------------------------------------------------
    def load(self, path):
        """A shard's ``{position: (chunk, row)}`` and chunks, its checksum checked."""
        if path in self.loaded:
            self.loaded[path] = self.loaded.pop(path)  # most recently used last
            return self.loaded[path]
        with open(path, 'rb') as f:
            data = f.read()
        expected = SHARD_NAME.match(osp.basename(path))['sha']
        if hashlib.sha256(data).hexdigest()[:16] != expected:
            fail(self.dir,
                 f'The teacher cache shard {path} is corrupted: the sha256 of its bytes is not the '
                 f'one its name records ({expected}). Delete that file (its samples are then '
                 'computed again and stored), or remove the folder to rebuild the cache.',
                 f'{osp.basename(path)} fails its checksum')
        chunks = torch.load(io.BytesIO(data), weights_only=True)
        where = {}
        for c, chunk in enumerate(chunks):
            for row, position in enumerate(chunk['positions'].tolist()):
                where[position] = (c, row)
        while len(self.loaded) >= 2:
            self.loaded.pop(next(iter(self.loaded)))
        self.loaded[path] = (where, chunks)
        return self.loaded[path]

    def locate(self, position):
        """``(chunks, chunk, row)`` of the shard holding ``position``, or ``None``."""
        firsts, span = self.index
        for k in range(bisect.bisect_right(firsts, position) - 1, -1, -1):
            first, last, _, path = self.shards[k]
            if first + span < position:
                break
            name = SHARD_NAME.match(osp.basename(path))
            if position <= last and position % int(name['world']) == int(name['rank']):
                where, chunks = self.load(path)
                if position in where:
                    return (chunks,) + where[position]
        return None

    def read(self, indices, positions, inputs, count=True):
        """The stored readouts ``{name: value}`` of a batch (``indices`` / ``positions``: its
        samples' stream keys; ``inputs``: the preprocessed batch, for its shape and device), or
        ``None`` when a sample is not stored for a batch of this shape. ``count``: add the
        samples to the summary's read ones."""
        found = []
        for index, position in zip(indices, positions):
            place = self.locate(position) or self.in_buffer(position)
            if place is None:
                return None
            chunks, c, row = place
            chunk = chunks[c]
            stored = int(chunk['indices'][row])
            if stored != index and self.written_by['world_size'] != self.manifest['world_size']:
                # another number of processes: a sampler padding each epoch to a multiple of the
                # world size (DefaultSampler's round_up) deals other samples to the positions
                return None
            if stored != index:
                fail(self.dir,
                     f'The teacher cache holds data set sample {stored} at stream position '
                     f'{position}, this run loads sample {index} there: the sampler deals the '
                     'data in another order (another data set length or sampler). Remove the '
                     'folder to rebuild the cache.',
                     f'position {position} holds another sample')
            if tuple(chunk['input_shape']) != tuple(inputs.shape[1:]):
                return None  # computed in a batch padded to another size
            found.append((chunk, row))
        self.counts['read'] += len(found) if count else 0
        return self.assemble(found, inputs.device)

    def in_buffer(self, position):
        """``(chunks, chunk, row)`` of a row this run wrote and has not flushed, or ``None``."""
        place = self.buffered.get(position)
        return None if place is None else (self.buffer,) + place

    def assemble(self, found, device):
        readouts = {}
        for n, name in enumerate(self.names):
            spec = found[0][0]['specs'][n]
            leaves = []
            for leaf in range(len(found[0][0]['leaves'][n])):
                dtype = getattr(torch, found[0][0]['dtypes'][n][leaf])
                parts = [chunk['leaves'][n][leaf] for chunk, _ in found]
                rows = [row for _, row in found]
                if isinstance(parts[0], dict):  # top-k
                    values = torch.stack([p['values'][r] for p, r in zip(parts, rows)])
                    indices = torch.stack([p['indices'][r] for p, r in zip(parts, rows)])
                    fill = torch.stack([p['fill'][r] for p, r in zip(parts, rows)])
                    value = topk_expand(values, indices, fill, parts[0]['classes'], dtype)
                else:
                    value = torch.stack([p[r] for p, r in zip(parts, rows)]).to(dtype)
                leaves.append(value.to(device, non_blocking=True))
            readouts[name] = unflatten(iter(leaves), spec)
        return readouts

    # -- writing ------------------------------------------------------------------------------
    def write(self, indices, positions, inputs, readouts):
        """Store the rows of a batch the teacher just computed (``readouts``: ``{name: value}``,
        every name of the manifest) whose positions are not stored yet."""
        self.counts['computed'] += len(positions)
        keep = [b for b, p in enumerate(positions) if self.locate(p) is None
                and self.in_buffer(p) is None]
        if not keep:
            return
        rows = torch.tensor(keep)
        storage = DTYPES[self.spec.dtype]
        chunk = dict(positions=torch.tensor([positions[b] for b in keep]),
                     indices=torch.tensor([indices[b] for b in keep]),
                     input_shape=list(inputs.shape[1:]), leaves=[], specs=[], dtypes=[])
        for name in self.names:
            leaves, spec = flatten(readouts[name])
            stored = []
            for leaf in leaves:
                if leaf.dim() == 0 or leaf.shape[0] != len(positions):
                    raise TypeError(f'teacher readout {name!r} has a leaf of shape '
                                    f'{tuple(leaf.shape)}, not one row per sample of the batch '
                                    f'({len(positions)}): it cannot be cached per sample')
                leaf = leaf.detach()[rows.to(leaf.device)].cpu()
                if self.spec.topk and name in TOPK_READOUTS and leaf.dim() >= 2 \
                        and self.spec.topk < leaf.shape[1]:
                    values, index, fill = topk_compress(leaf, self.spec.topk)
                    stored.append(dict(values=values.to(storage), indices=index, fill=fill,
                                       classes=leaf.shape[1]))
                elif leaf.is_floating_point():
                    stored.append(leaf.to(storage))
                else:
                    stored.append(leaf)  # integer readouts are stored as they are
            chunk['leaves'].append(stored)
            chunk['specs'].append(spec)
            chunk['dtypes'].append([str(leaf.dtype).replace('torch.', '') for leaf in leaves])
        for row, position in enumerate(chunk['positions'].tolist()):
            self.buffered[position] = (len(self.buffer), row)
        self.buffer.append(chunk)
        self.buffer_bytes += sum(t.numel() * t.element_size() for t in tensors_in(chunk))
        self.counts['written'] += len(keep)
        if self.buffer_bytes >= SHARD_BYTES:
            self.flush()

    def flush(self):
        """Write the buffered rows as one shard (atomically, its checksum in its name)."""
        if not self.buffer:
            return
        positions = torch.cat([chunk['positions'] for chunk in self.buffer])
        first, last = int(positions.min()), int(positions.max())
        out = io.BytesIO()
        torch.save(self.buffer, out)
        data = out.getvalue()
        sha = hashlib.sha256(data).hexdigest()[:16]
        name = (f'shard-r{self.rank}-w{self.manifest["world_size"]}-{first:012d}-{last:012d}-'
                f'{len(positions)}-{sha}.pt')
        path = osp.join(self.dir, name)
        write_atomically(path, data)
        self.set_shards(self.shards + [(first, last, len(positions), path)])
        self.buffer, self.buffer_bytes, self.buffered = [], 0, {}

    def summary(self):
        return (f'teacher cache {self.dir}: {self.counts["read"]} samples read, '
                f'{self.counts["computed"]} computed by the teacher, {self.counts["written"]} '
                'stored')


def tensors_in(value):
    if torch.is_tensor(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tensors_in(item)


def manifest_text(value):
    """A short hash of a JSON-able description (config dicts, shapes, names; a class or function
    in it by its qualified name, not its address)."""
    return text_sha(json.dumps(value, sort_keys=True, default=qualified_name))
