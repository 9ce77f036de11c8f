"""Blobs under the data dir, named by id: ``jobs/<id>/input.<ext>``, ``jobs/<id>/mix.wav``, ...

Paths are derived from ids only, never from client-supplied names, so a request cannot reach outside its
own folder. Deleting a job deletes its folder. A crash leaves debris that :meth:`BlobStore.sweep` removes:
a job folder no row owns (an upload cut off by a kill: the row is written after the upload), a delete cut
off half-way (``.del-*``), and ``.part`` files (an output write cut off).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from autovoice.config import Settings
from autovoice.errors import ParameterError

log = logging.getLogger(__name__)
_ID_RE = re.compile(r"^[a-z]+_[0-9a-f]{8,32}$")
#: File names of a conversion's outputs inside its job folder (deterministic, so a rerun overwrites).
MIX = "mix.wav"
VOCALS = "mix.vocals.wav"
ACCOMPANIMENT = "mix.accompaniment.wav"
REPORT = "report.json"


def check_id(value: str) -> str:
    """``value`` if it looks like one of our ids (``job_<hex>``), else ``invalid_parameter``."""
    if not _ID_RE.match(value):
        raise ParameterError("invalid_parameter", f"'{value[:80]}' is not a valid id.", {"id": value[:80]})
    return value


class BlobStore:
    """Files that belong to rows, in ``<data_dir>/jobs`` and ``<data_dir>/uploads``."""

    def __init__(self, settings: Settings) -> None:
        self.root = Path(settings.data_dir)

    def job_dir(self, job_id: str) -> Path:
        """The folder of job ``job_id`` (not created)."""
        return self.root / "jobs" / check_id(job_id)

    def scratch_dir(self) -> Path:
        """A new private folder for an upload that belongs to no row yet (delete it when done)."""
        d = self.root / "uploads" / uuid.uuid4().hex
        d.mkdir(parents=True)
        return d

    def clean_scratch(self, *, older_than_s: float = 3600.0) -> int:
        """Remove upload folders left by requests that died (crash mid-upload); returns how many.

        Only old ones: other servers sharing the data dir may be receiving uploads right now.
        """
        root = self.root / "uploads"
        if not root.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for d in root.iterdir():
            try:
                if d.stat().st_mtime < cutoff:
                    shutil.rmtree(d, ignore_errors=True)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def sweep(self, owned: Callable[[Collection[str]], Collection[str]], *, older_than_s: float) -> Swept:
        """Remove crash debris from ``jobs/``: every entry no row owns, and every ``.part`` file in the
        folders rows own, each only when nothing in it changed for ``older_than_s`` seconds (another server
        sharing the data dir may be receiving an upload, or writing an output, right now: those change).

        Parameters
        ----------
        owned
            Of the job ids given, those that have a row (asked after the folder was listed, so a row
            written meanwhile keeps its folder).
        older_than_s
            How long untouched something must be to go; 0 when nothing else can be writing (an embedded
            server starting: jobs run in no other process).
        """
        root = self.root / "jobs"
        try:
            entries = list(root.iterdir())
        except FileNotFoundError:
            return Swept()
        rows = set(owned([e.name for e in entries if _ID_RE.match(e.name)]))
        cutoff = time.time() - older_than_s
        swept = Swept()
        for entry in entries:
            try:
                if entry.name in rows:
                    for part in entry.rglob("*.part"):
                        if part.stat().st_mtime <= cutoff:
                            part.unlink(missing_ok=True)
                            swept.parts += 1
                elif _newest_mtime(entry) <= cutoff:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
                    swept.folders += 1
            except FileNotFoundError:  # removed meanwhile (its job deleted, another server's sweep)
                continue
            except OSError as exc:  # one entry that cannot go must not stop the sweep (nor a start)
                log.warning("could not remove crash debris %s: %s", entry.name, exc)
        return swept

    def delete_job(self, job_id: str) -> None:
        """Remove the job's folder and everything in it (a no-op when it does not exist)."""
        d = self.job_dir(job_id)
        if not d.exists():
            return
        trash = d.with_name(f".del-{d.name}-{uuid.uuid4().hex[:8]}")
        os.replace(d, trash)
        shutil.rmtree(trash, ignore_errors=True)


@dataclass
class Swept:
    """What :meth:`BlobStore.sweep` removed: entries of ``jobs/`` no row owned, ``.part`` files."""

    folders: int = 0
    parts: int = 0


def _newest_mtime(path: Path) -> float:
    """The latest modification time of ``path`` and of everything under it."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                try:
                    newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
                except FileNotFoundError:
                    continue
    return newest
