"""Result rows on disk: one CSV row per finished run, read back as dicts of strings.

Crash-safe: every write replaces the whole file (a temporary file beside it, flushed to disk,
then renamed over it), so a kill leaves the old file or the new one, never a cut row; and a
table whose columns end with ``row_sha`` gets, in each row, a checksum of the row's other fields,
so a reader can tell a whole row from one cut, joined or edited (a file written by older code,
or by hand). :func:`repair_rows` finds such rows, names them (file and line), and removes them
from the file: the tool then runs them again. :func:`read_rows` never returns them.
"""
import csv
import hashlib
import io
import math
import os
import os.path as osp
import re

ROW_SHA = 'row_sha'
FINISHED = re.compile(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d')


def row_checksum(fields):
    """The checksum of a row's fields (strings, in column order, ``row_sha`` left out)."""
    return hashlib.sha256('\x1f'.join(fields).encode()).hexdigest()[:12]


def malformed(header, fields):
    """Why the row ``fields`` (strings) is not a whole row of a table with ``header``, or
    ``None``. A row with a ``row_sha`` is checked against it; a row written before checksums
    existed (an empty ``row_sha``, or no such column) must have every column and, where the
    table has one, a whole ``finished`` time (the last column such rows were written with)."""
    if len(fields) != len(header):
        return f'{len(fields)} fields, the header has {len(header)}'
    row = dict(zip(header, fields))
    if row.get(ROW_SHA):
        rest = [value for key, value in zip(header, fields) if key != ROW_SHA]
        return None if row[ROW_SHA] == row_checksum(rest) else \
            f'its checksum ({ROW_SHA}) does not match its fields: cut or edited'
    if 'finished' in row and not FINISHED.fullmatch(row['finished']):
        return f'no whole finish time (finished={row["finished"]!r}): cut off'
    return None


def scan(path):
    """``(header, [(first line, fields)] of the whole rows, [(first line, reason)] of the
    others)`` of the CSV at ``path``; line numbers count from 1, the header's included."""
    with open(path, newline='') as f:
        reader = csv.reader(f)
        header = next(reader, [])
        good, bad, line = [], [], reader.line_num + 1
        for fields in reader:
            if fields:  # a blank line is no row
                reason = malformed(header, fields)
                (bad if reason else good).append((line, reason or fields))
            line = reader.line_num + 1
    return header, good, bad


def read_rows(path):
    """The whole rows of the CSV at ``path`` as dicts (``[]`` when there is no file); rows that
    are not whole are left out, said (:func:`repair_rows` removes them from the file)."""
    if not osp.isfile(path):
        return []
    header, good, bad = scan(path)
    for line, reason in bad:
        print(f'{path}, line {line}: not a whole row ({reason}); left out', flush=True)
    return [dict(zip(header, fields)) for _, fields in good]


def repair_rows(path):
    """Remove the rows of the CSV at ``path`` that are not whole (see :func:`malformed`),
    naming each (file, line, why); returns their count. The tool reruns their runs: a run whose
    row is missing was not finished."""
    if not osp.isfile(path):
        return 0
    header, good, bad = scan(path)
    for line, reason in bad:
        print(f'{path}, line {line}: not a whole row ({reason}): removed from the file, its run '
              'is done again', flush=True)
    if bad:
        replace_file(path, csv_text(header, [fields for _, fields in good]))
    return len(bad)


def fmt(value):
    return f'{value:.10g}' if isinstance(value, float) else value


def read_header(path):
    with open(path, newline='') as f:
        return next(csv.reader(f), [])


def csv_text(header, rows):
    """The CSV text of ``header`` and ``rows`` (lists of field strings)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def replace_file(path, text):
    """Write ``text`` to ``path`` whole: a temporary file beside it, flushed to disk, renamed
    over it (a reader, or a kill, sees the old file or the new one)."""
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'w', newline='') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def fields_of(columns, row):
    """The fields of ``row`` (a dict; missing columns empty) in ``columns`` order, with its
    checksum when ``columns`` has a ``row_sha`` column."""
    fields = [str(fmt(row.get(k, ''))) for k in columns]
    if ROW_SHA in columns:
        at = columns.index(ROW_SHA)
        fields[at] = row_checksum(fields[:at] + fields[at + 1:])
    return fields


def rewrite_rows(path, columns, rows):
    """Write ``rows`` (dicts of strings, as :func:`read_rows` gives them; missing columns empty)
    to the CSV at ``path`` under the header ``columns``, replacing it whole. Each row keeps its
    own ``row_sha`` (empty for rows written before checksums), recomputed only where it had one
    (a row whose fields this call changed, e.g. relabelled)."""
    lines = []
    for row in rows:
        fields = [str(row.get(k, '')) for k in columns]
        if row.get(ROW_SHA):
            fields = fields_of(columns, row)
        lines.append(fields)
    replace_file(path, csv_text(list(columns), lines))


def check_csv(path, columns, tool, flag):
    """Before a tool runs anything: ``path`` is not a folder, and a CSV there holds no column
    ``columns`` lacks (a newer version's file); else stop naming the file and ``flag``'s fix."""
    if osp.isdir(path):
        raise SystemExit(f'{tool}: {path} is a folder, not a CSV: give another {flag}')
    extra = [c for c in read_header(path) if c not in columns] if osp.isfile(path) else []
    if extra:
        raise SystemExit(f'{tool}: {path} has columns {extra} this code does not write (another '
                         f'version wrote it): use that version, or give another {flag}')


def append_row(path, columns, row):
    """Add ``row`` (missing columns empty) to the CSV at ``path``, header first if new, the file
    replaced whole. A CSV written before ``columns`` gained a column gets the new header (the
    older rows leave it empty); one holding a column ``columns`` lacks is refused, and so is one
    with a row that is not whole (run :func:`repair_rows` first)."""
    columns = list(columns)
    header, good = columns, []
    if osp.isfile(path):
        header, good, bad = scan(path)
        if bad:
            raise ValueError(f'{path}, line {bad[0][0]}: not a whole row ({bad[0][1]}); the tool '
                             'removes such rows when it starts: rerun it')
        if header != columns:
            extra = [c for c in header if c not in columns]
            if extra:
                raise ValueError(f'{path} has columns {extra} this code does not write: move '
                                 'the file aside or use the code that wrote it')
    old = [dict(zip(header, fields)) for _, fields in good]  # checked whole: sums renewed
    old = [fields_of(columns, r) if r.get(ROW_SHA) else [r.get(k, '') for k in columns]
           for r in old]
    replace_file(path, csv_text(columns, old + [fields_of(columns, row)]))


def number(value):
    """A CSV field as a float (``nan`` when empty or not a number)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
