"""A temporary folder per worker process, swept once its process is gone.

``multiprocessing`` (and Celery's ``billiard``) keep their own files in a ``pymp-*`` folder of the system's
temporary folder and remove it when the process exits normally; a process killed with ``kill -9`` (a
whole Celery worker, a worker child of the embedded server) leaves it behind, one per kill. Each of our
worker processes therefore points its temporary files (``tempfile``, hence those folders too) at
``<system temp>/autovoice-<uid>/<pid>`` (:func:`use_private_tempdir`), and :func:`sweep_tempdirs` removes the
folders whose process no longer runs: provably stale, since a pid folder belongs to one process of this
host only.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def _root() -> Path:
    """``<system temp>/autovoice-<uid>``, also from a process whose temporary folder already is one of it."""
    name = f"autovoice-{os.getuid()}" if hasattr(os, "getuid") else "autovoice"
    current = Path(tempfile.gettempdir())
    return current.parent if current.parent.name == name else current / name


def use_private_tempdir() -> Path:
    """Point this process's temporary files at a folder of its own (created; removed at a normal exit,
    and by :func:`sweep_tempdirs` after a kill). Call it early, before anything makes a temporary file."""
    root = _root()
    root.mkdir(mode=0o700, exist_ok=True)
    mine = root / str(os.getpid())
    mine.mkdir(mode=0o700, exist_ok=True)
    tempfile.tempdir = str(mine)
    atexit.register(functools.partial(shutil.rmtree, mine, ignore_errors=True))
    return mine


def sweep_tempdirs() -> int:
    """Remove the private temporary folders of processes that no longer run; returns how many."""
    import psutil

    root = _root()
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return 0
    removed = 0
    for entry in entries:
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        except psutil.AccessDenied:  # someone else's process: it runs
            alive = True
        if not alive:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d temporary folder(s) of worker processes that were killed", removed)
    return removed
