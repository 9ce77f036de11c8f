"""A small real filesystem for storage-failure tests: a tmpfs mounted for one test, then removed.

Mounting needs root (or CAP_SYS_ADMIN); where it is not permitted the test is skipped with the reason.
Nothing outlives the test: the mount is lazily unmounted at the end even when the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, *, size_kib: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size_kib`` KiB at ``path`` (created) for the block; skip when not permitted."""
    mount = shutil.which("mount")
    umount = shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("needs mount(8) and umount(8) to make a small filesystem")
    path.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip()[:200]}")
    try:
        yield path
    finally:
        subprocess.run([umount, "-l", str(path)], capture_output=True, check=False)


def remount_read_only(path: Path) -> None:
    """Make the tmpfs at ``path`` read-only (root ignores file modes, a read-only mount it cannot)."""
    mount = shutil.which("mount")
    assert mount is not None
    subprocess.run([mount, "-o", "remount,ro", str(path)], check=True, capture_output=True)


def fill(path: Path, *, leave_bytes: int = 0) -> Path:
    """Fill the filesystem holding ``path`` until at most ``leave_bytes`` are free; returns the filler."""
    filler = path / "filler.bin"
    block = b"\0" * 65536
    with filler.open("ab") as fh:
        while shutil.disk_usage(path).free > leave_bytes:
            room = shutil.disk_usage(path).free - leave_bytes
            try:
                fh.write(block[: max(1, min(len(block), room))])
                fh.flush()
            except OSError:
                break
        os.fsync(fh.fileno())
    return filler
