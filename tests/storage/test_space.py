"""A full or read-only data dir: found by the probe, named by a typed error with the cause."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from autovoice.errors import StorageError
from autovoice.storage.space import check_storage, require_writable, storage_error
from tests.storage.mounts import fill, remount_read_only, tmpfs


def test_os_errors_map_to_storage_codes(tmp_path: Path) -> None:
    full = storage_error(OSError(errno.ENOSPC, "No space left on device"), doing="saving")
    assert isinstance(full, StorageError)
    assert (full.code, full.http_status) == ("storage_full", 507)
    assert "No space left on device" in full.message
    assert "while saving" in full.message
    ro = storage_error(OSError(errno.EROFS, "Read-only file system"))
    assert ro is not None
    assert ro.code == "storage_read_only"
    assert storage_error(OSError(errno.ENOENT, "No such file")) is None
    # Permission denied is a storage problem under the data dir only (not for a model file elsewhere).
    denied = OSError(errno.EACCES, "Permission denied", str(tmp_path / "jobs" / "x" / "mix.wav"))
    found = storage_error(denied, data_dir=tmp_path)
    assert found is not None
    assert found.code == "storage_read_only"
    elsewhere = OSError(errno.EACCES, "Permission denied", "/usr/share/model.onnx")
    assert storage_error(elsewhere, data_dir=tmp_path) is None
    assert storage_error(ValueError("nothing to do with disks")) is None
    # A library error raised from an OSError keeps its cause.
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as exc:
            raise RuntimeError("write failed") from exc
    except RuntimeError as wrapped:
        quota = storage_error(wrapped)
    assert quota is not None
    assert quota.code == "storage_full"
    # With the data dir healthy, an unrelated error stays unrelated.
    assert storage_error(RuntimeError("System error"), data_dir=tmp_path) is None


def test_probe_on_a_real_full_and_read_only_filesystem(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", size_kib=512) as mnt:
        healthy = check_storage(mnt, min_free_bytes=64 * 1024)
        assert healthy.ok
        assert healthy.free_bytes is not None
        assert healthy.free_bytes > 64 * 1024
        assert not check_storage(mnt, min_free_bytes=10 * 2**20).ok  # below the reserve
        fill(mnt)
        full = check_storage(mnt, min_free_bytes=0)
        assert not full.ok
        error = full.error()
        assert error is not None
        assert error.code == "storage_full"
        assert "No space left on device" in error.message
        # libsndfile loses the errno ("System error"): the probe names the cause.
        import numpy as np
        import soundfile as sf

        with pytest.raises(sf.LibsndfileError) as caught:
            sf.write(mnt / "out.wav", np.zeros(48_000, dtype=np.float32), 48_000)
        found = storage_error(caught.value, data_dir=mnt, doing="writing the job's files")
        assert found is not None
        assert found.code == "storage_full"
        assert type(caught.value).__name__ in found.message
        assert str(mnt) not in found.message  # no server path in a message
        (mnt / "filler.bin").unlink()
        (mnt / "out.wav").unlink(missing_ok=True)
        remount_read_only(mnt)
        ro = check_storage(mnt, min_free_bytes=0)
        assert not ro.ok
        assert not ro.writable
        with pytest.raises(StorageError) as refused:
            require_writable(mnt)
        assert refused.value.code == "storage_read_only"
        assert "Read-only file system" in refused.value.message
