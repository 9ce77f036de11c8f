"""``run_worker`` refuses to start without a broker or with a bad concurrency (before touching anything)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autovoice.config import Settings
from autovoice.errors import ParameterError
from autovoice.jobs.worker import child_index, run_worker


def test_worker_needs_a_broker(tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as err:
        run_worker(Settings(broker_url=None, data_dir=tmp_path))
    assert err.value.code == "broker_not_configured"
    assert "AUTOVOICE_BROKER_URL" in err.value.message


def test_worker_concurrency_checked(tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as err:
        run_worker(Settings(broker_url="redis://127.0.0.1:1/0", data_dir=tmp_path), concurrency=0)
    assert err.value.code == "invalid_parameter"


def test_child_index_outside_a_pool() -> None:
    assert child_index() == 0  # the main process of a worker (or anything else) is index 0
