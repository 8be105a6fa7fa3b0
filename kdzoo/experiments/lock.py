"""One run at a time per results folder: a lock file (``fcntl.flock``, released by the kernel
when the process ends, however it ends) holding the running command's pid and command line, so a
second tool started on the same folder stops at once and names the one running."""
import fcntl
import os
import os.path as osp
import shlex
import sys
from contextlib import contextmanager


@contextmanager
def folder_lock(folder, path, tool):
    """Hold the lock file ``path`` (in or under the results folder ``folder``) for the ``with``
    body; if another process holds it, stop (``SystemExit``) with a message naming ``tool``, the
    folder and the running command."""
    if osp.exists(folder) and not osp.isdir(folder):
        raise SystemExit(f'{tool}: {folder} is a file, not a folder: give a folder for the results')
    os.makedirs(osp.dirname(path), exist_ok=True)
    f = open(path, 'a+')
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or 'pid not recorded'
        f.close()
        raise SystemExit(f'{tool}: another run is using {folder} ({holder}; lock file {path}). '
                         'Wait for it to finish, or give this run another folder') from None
    try:
        f.seek(0)
        f.truncate()
        f.write(f'pid {os.getpid()}: {shlex.join(sys.argv)}\n')
        f.flush()
        yield path
    finally:
        f.close()  # closing releases the lock; the file stays (a later run reuses it)
