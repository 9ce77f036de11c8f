"""Is the data dir writable, and is there room? Storage problems as typed errors.

A full or read-only data dir shows up as an ``OSError`` (``ENOSPC``, ``EDQUOT``, ``EROFS``...) from plain
file writes, or as a library's own error with the errno lost (libsndfile says "System error"). The
service and the job runner turn both into :class:`~autovoice.errors.StorageError` (507
``storage_full`` / ``storage_read_only``) with the cause in the message, and ``/health/ready`` fails
while :func:`check_storage` finds the data dir full or not writable.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from autovoice.errors import StorageError

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_READ_ONLY = frozenset({errno.EROFS})
#: Permission errors count as "not writable" only for files under the data dir (elsewhere, a model file
#: the server may not read, say, they are not a storage problem).
_DENIED = frozenset({errno.EACCES, errno.EPERM})


@dataclass(frozen=True)
class StorageStatus:
    """What :func:`check_storage` found: ``ok`` when the data dir is writable and has room."""

    writable: bool
    free_bytes: int | None
    min_free_bytes: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def error(self) -> StorageError | None:
        """The problem as a :class:`StorageError` (None when there is none)."""
        if self.problem is None:
            return None
        code = "storage_full" if self.writable else "storage_read_only"
        return StorageError(
            code,
            self.problem,
            {"free_bytes": self.free_bytes, "min_free_bytes": self.min_free_bytes},
        )


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def check_storage(data_dir: Path, *, min_free_bytes: int) -> StorageStatus:
    """Probe the data dir: create and write a one-byte file in it, and read its filesystem's free space.

    ``min_free_bytes`` 0 skips the free-space threshold (a failing write still counts).
    """
    free: int | None = None
    try:
        free = int(shutil.disk_usage(data_dir).free)
    except OSError as exc:
        return StorageStatus(False, None, min_free_bytes, f"The data dir cannot be read: {_cause(exc)}.")
    probe = Path(data_dir) / f".write-probe-{uuid.uuid4().hex[:8]}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\0")
        finally:
            os.close(fd)
    except OSError as exc:
        full = exc.errno in _FULL
        what = "full" if full else "not writable"
        return StorageStatus(full, free, min_free_bytes, f"The data dir is {what}: {_cause(exc)}.")
    finally:
        with contextlib.suppress(OSError):  # never created, or the filesystem went away
            probe.unlink()
    if min_free_bytes > 0 and free < min_free_bytes:
        return StorageStatus(
            True,
            free,
            min_free_bytes,
            f"The data dir's filesystem has {_mib(free)} free, below the {_mib(min_free_bytes)} the "
            "server keeps in reserve (AUTOVOICE_MIN_FREE_BYTES). Free some space.",
        )
    return StorageStatus(True, free, min_free_bytes)


def _cause(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{reason} (errno {exc.errno})" if exc.errno is not None else reason


def _under(filename: object, folder: Path | None) -> bool:
    if folder is None or not isinstance(filename, (str, os.PathLike)):
        return False
    return Path(os.path.abspath(filename)).is_relative_to(os.path.abspath(folder))


def _os_errors(exc: BaseException) -> list[OSError]:
    """``exc`` and its causes/contexts that are OSErrors (a wrapped write error keeps its errno there)."""
    found: list[OSError] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            found.append(current)
        current = current.__cause__ or current.__context__
    return found


def storage_error(
    exc: BaseException, *, data_dir: Path | None = None, min_free_bytes: int = 0, doing: str = ""
) -> StorageError | None:
    """``exc`` as a :class:`StorageError` when a full or read-only data dir caused it, else None.

    An ``OSError`` (or one in its cause chain) with ``ENOSPC``/``EDQUOT``/``EFBIG`` is ``storage_full``;
    ``EROFS`` is ``storage_read_only``, and so are ``EACCES``/``EPERM`` on a file under ``data_dir``.
    Any other exception counts only when ``data_dir`` is given and probing it now finds it full or not
    writable (libraries such as libsndfile lose the errno), or with less than ``min_free_bytes`` free (a
    failed write cleans its partial file up, so the space is back by the time the error is seen): the
    message then names the original error too.
    """
    where = f" while {doing}" if doing else ""
    for os_error in _os_errors(exc):
        if os_error.errno in _FULL:
            return StorageError(
                "storage_full",
                f"The server's data storage is full{where}: {_cause(os_error)}. Free some space and retry.",
                {"errno": os_error.errno},
            )
        if os_error.errno in _READ_ONLY or (
            os_error.errno in _DENIED and _under(os_error.filename, data_dir)
        ):
            return StorageError(
                "storage_read_only",
                f"The server's data storage is not writable{where}: {_cause(os_error)}. "
                "Check the data dir's mount and permissions.",
                {"errno": os_error.errno},
            )
    if data_dir is None:
        return None
    status = check_storage(data_dir, min_free_bytes=min_free_bytes)
    found = status.error()
    if found is None:
        return None
    # The original error's text, with the server's paths cut out (messages never show them).
    original = f"{type(exc).__name__}: {str(exc).replace(str(data_dir), '<data dir>')[:200]}"
    return StorageError(
        found.code, f"{status.problem} It caused this failure{where}: {original}", dict(found.details)
    )


def require_writable(data_dir: Path) -> None:
    """Create the data dir if needed and check that it takes a write; raises :class:`StorageError`
    (one clear sentence, no traceback wanted) when it cannot."""
    try:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        found = storage_error(exc, data_dir=Path(data_dir), doing=f"creating the data dir {data_dir}")
        if found is None:
            raise
        raise found from None
    status = check_storage(Path(data_dir), min_free_bytes=0)
    if not status.ok:
        code = "storage_full" if status.writable else "storage_read_only"
        raise StorageError(
            code,
            f"Cannot use the data dir {data_dir}: {status.problem} Set AUTOVOICE_DATA_DIR to a "
            "writable folder, or fix its mount.",
            {"data_dir": str(data_dir)},
        )
