"""Result rows on disk: one CSV row per finished run, appended at once (so a killed experiment
keeps every finished run), read back as dicts of strings."""
import csv
import math
import os.path as osp


def read_rows(path):
    if not osp.isfile(path):
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def fmt(value):
    return f'{value:.10g}' if isinstance(value, float) else value


def append_row(path, columns, row):
    """Append ``row`` (missing columns empty) to the CSV at ``path``, header first if new."""
    new = not osp.isfile(path)
    with open(path, 'a', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerow({k: fmt(row.get(k, '')) for k in columns})


def number(value):
    """A CSV field as a float (``nan`` when empty or not a number)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
