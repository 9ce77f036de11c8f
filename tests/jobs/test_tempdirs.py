"""Worker processes keep their temporary files (multiprocessing's pymp-* folders among them) in a folder of
their own, removed once the process is gone, even after a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autovoice.config import Settings
from autovoice.jobs.pool import WorkerCrashedError, WorkerPool
from autovoice.jobs.tempdirs import sweep_tempdirs, use_private_tempdir
from tests.support import wait_until


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_sweep_removes_only_the_folders_of_dead_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    root = tmp_path / f"autovoice-{os.getuid()}"
    dead = root / str(_dead_pid())
    (dead / "pymp-abc123").mkdir(parents=True)
    live = root / str(os.getppid())
    live.mkdir()
    other = root / "not-a-pid"
    other.mkdir()
    assert sweep_tempdirs() == 1
    assert not dead.exists()
    assert live.is_dir()
    assert other.is_dir()
    mine = use_private_tempdir()  # this process's own, under the same root
    assert mine == root / str(os.getpid())
    assert tempfile.gettempdir() == str(mine)
    assert sweep_tempdirs() == 0


def _running(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _tempdir() -> str:
    import multiprocessing.util

    return multiprocessing.util.get_temp_dir()  # multiprocessing's pymp-* folder of the calling process


@pytest.mark.timeout(120)
def test_a_killed_childs_pymp_folder_is_swept_by_the_next_pool(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the children's system temp
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # and this process's
    pool = WorkerPool(settings, workers=1, name="test")
    try:
        pymp = Path(pool.submit(_tempdir).result(timeout=60))
        child = int(pymp.parent.name)
        assert pymp.name.startswith("pymp-")
        assert pymp.parent.parent == tmp_path / f"autovoice-{os.getuid()}"
        os.kill(child, signal.SIGKILL)
        wait_until(lambda: not _running(child), timeout=30, what="the child's death")
        assert pymp.is_dir()  # nothing ran to remove it
        fresh = None
        for _ in range(3):  # a call sent before the pool noticed the death fails with it: once more
            try:
                fresh = Path(pool.submit(_tempdir).result(timeout=60))
                break
            except WorkerCrashedError:
                continue
        assert fresh is not None
        assert fresh.is_dir()  # a new child, a new folder
        assert not pymp.parent.exists()  # the dead one's went when its pool was replaced
    finally:
        pool.shutdown()
