"""Blobs under the data dir, named by id: ``jobs/<id>/input.<ext>``, ``jobs/<id>/mix.wav``, ...

Paths are derived from ids only, never from client-supplied names, so a request cannot reach outside its
own folder. Deleting a job deletes its folder.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path

from autovoice.config import Settings
from autovoice.errors import ParameterError

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

    def delete_job(self, job_id: str) -> None:
        """Remove the job's folder and everything in it (a no-op when it does not exist)."""
        d = self.job_dir(job_id)
        if not d.exists():
            return
        trash = d.with_name(f".del-{d.name}-{uuid.uuid4().hex[:8]}")
        os.replace(d, trash)
        shutil.rmtree(trash, ignore_errors=True)
