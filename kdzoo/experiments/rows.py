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


def read_header(path):
    with open(path, newline='') as f:
        return next(csv.reader(f), [])


def rewrite_rows(path, columns, rows):
    """Write ``rows`` (dicts of strings, as :func:`read_rows` gives them; missing columns empty)
    to the CSV at ``path`` under the header ``columns``, replacing it."""
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: r.get(k, '') for k in columns} for r in rows)


def append_row(path, columns, row):
    """Append ``row`` (missing columns empty) to the CSV at ``path``, header first if new. A CSV
    written before ``columns`` gained a column is rewritten once with the new header (the older
    rows leave it empty); one holding a column ``columns`` lacks is refused."""
    new = not osp.isfile(path)
    if not new:
        header = read_header(path)
        if header != list(columns):
            extra = [c for c in header if c not in columns]
            if extra:
                raise ValueError(f'{path} has columns {extra} this code does not write: move '
                                 'the file aside or use the code that wrote it')
            rewrite_rows(path, columns, read_rows(path))
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
