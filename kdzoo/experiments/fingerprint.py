"""What produced a result: the fingerprint every reused result is keyed by (docs/results.md,
"Reused results").

A fingerprint is a short hash of its parts, each a short hash or a name:

- ``config``: the run's config as resolved (its ``_base_`` files, every cfg-option and the
  budget's options merged: iterations, the schedule actually used, validations), hashed by
  :func:`kdzoo.experiments.runs.config_sha` (workers and logging left out);
- ``teacher``: the sha256 of the teacher checkpoint's bytes (``kdzoo compare``), or the
  fingerprint of what trained it (the matrix's own teachers); ``none`` without a teacher;
- ``metric``: the metric key and its scale to the table's units, as ``KEY*SCALE``;
- ``budget``: the budget's label (e.g. ``500it/3ev``);
- ``precision`` (compare): ``amp`` with ``--amp`` (mixed precision), else ``fp32``;
- ``data``: for compare, :func:`data_sha` of the folders and annotation files the train and val
  loaders read; for the matrix, the generated data's sizes.

The tools write the fingerprint and its parts into every row and, per fingerprint, a record
(``fingerprints/<fingerprint>.json`` in the results folder: the parts, the options and the
resolved config, flattened) so that a refusal can name the config keys that differ.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass, field

from kdzoo.experiments.rows import replace_file
from kdzoo.hashing import text_sha

RECORDS = 'fingerprints'
LEGACY_NOTE = ('**Legacy rows: written before rows carried their fingerprint (what produced '
               'them); shown as they were, never reused by a new run.**')


def legacy(row):
    """Whether ``row`` (of a results CSV) was written before rows carried their fingerprint."""
    return not row.get('fingerprint')


def flat(value, prefix=''):
    """A nested dict as ``{dotted key: leaf}`` (lists are leaves)."""
    if not isinstance(value, dict) or not value:
        return {prefix: value} if prefix else {}
    out = {}
    for key, item in value.items():
        out.update(flat(item, f'{prefix}.{key}' if prefix else str(key)))
    return out


@dataclass(frozen=True)
class Fingerprint:
    """``parts``: name -> short text; ``options`` / ``resolved``: the flattened cfg-options and
    resolved config the ``config`` part hashes (for naming what differs)."""
    parts: dict
    options: dict = field(default_factory=dict)
    resolved: dict = field(default_factory=dict)

    @property
    def value(self):
        return text_sha(json.dumps(self.parts, sort_keys=True))

    @property
    def parts_text(self):
        """``config=… teacher=… metric=… budget=…``: the CSV's ``fingerprint_parts``."""
        return ' '.join(f'{key}={value}' for key, value in self.parts.items())

    def save(self, folder):
        """Write the record ``folder/fingerprints/<value>.json`` (once)."""
        path = osp.join(folder, RECORDS, f'{self.value}.json')
        if not osp.isfile(path):
            os.makedirs(osp.dirname(path), exist_ok=True)
            replace_file(path, json.dumps(dict(parts=self.parts, options=self.options,
                                               resolved=self.resolved), sort_keys=True))


def parse_parts(text):
    return dict(item.split('=', 1) for item in (text or '').split() if '=' in item)


def load_record(folder, value):
    path = osp.join(folder, RECORDS, f'{value}.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def keys_differing(old, new, limit=6):
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ', '.join(keys[:limit]) + (f' (and {len(keys) - limit} more)' if len(keys) > limit
                                      else '')


WHAT = dict(teacher='teacher checkpoint bytes differ',
            data='the data differ (files or their sizes)')


def differences(records, row, new):
    """What differs between the setup that wrote ``row`` (its ``fingerprint_parts`` and, when
    its record is in the folder ``records``, its config) and ``new``, as phrases (the row's
    first)."""
    old = parse_parts(row.get('fingerprint_parts'))
    said = []
    for part in dict.fromkeys(list(old) + list(new.parts)):
        before, now = old.get(part, 'none'), new.parts.get(part, 'none')
        if before == now:
            continue
        if part == 'config':
            record = load_record(records, row['fingerprint']) or {}
            options = keys_differing(record.get('options', {}), new.options)
            rest = {k for k in set(record.get('resolved', {})) | set(new.resolved)
                    if record.get('resolved', {}).get(k) != new.resolved.get(k)
                    and k not in set(record.get('options', {})) | set(new.options)}
            if not record:
                said.append('the resolved config differs (its record is not in the folder)')
            if record and options:
                said.append(f'config options differ: {options}')
            if record and rest:
                said.append('config differs (the config file or its _base_): '
                            + keys_differing({k: record['resolved'].get(k) for k in rest},
                                             {k: new.resolved.get(k) for k in rest}))
            if record and not options and not rest:
                said.append('the resolved config differs')
        else:
            said.append(WHAT.get(part, f'{part} {before} vs {now}'))
    return said or ['its fingerprint differs']


def refusal(tool, folder, csv_path, rows, new, fix, records=None):
    """The error when ``rows`` (of ``csv_path`` in ``folder``; fingerprint records in
    ``records``, default ``folder``) were made by another setup than ``new`` (the first row's
    fingerprint now): where, what differs (for the first such row), and the fix."""
    row = rows[0]
    which = ', '.join(f'{k} {row[k]}' for k in ('task', 'pair', 'arm', 'loss', 'seed')
                      if row.get(k))
    return (f'{tool}: {folder} holds results of another setup: {len(rows)} row(s) of '
            f'{csv_path} (e.g. {which}) were made with fingerprint {row["fingerprint"]}, this run '
            f'has {new.value}. What differs (the CSV\'s vs this run\'s): '
            f'{"; ".join(differences(records or folder, row, new))}. Those results are kept '
            f'and never reused for another setup: give this run a new {fix}.')
