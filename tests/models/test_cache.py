"""The model cache: a lock per model while it loads, least-recently-used eviction beyond a memory budget,
and models in use that keep working when they are evicted."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from autovoice.models.cache import ModelCache, model_nbytes


def _array(nbytes: int, fill: int = 0) -> np.ndarray:
    return np.full(nbytes, fill, dtype=np.uint8)


def test_a_slow_load_does_not_block_another_model() -> None:
    cache = ModelCache(max_bytes=0)
    cache.get("b", "cpu", lambda: "model b")
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        assert release.wait(10)
        return "model a"

    loader = threading.Thread(target=cache.get, args=("a", "cpu", slow))
    loader.start()
    try:
        assert started.wait(10)
        got: list[str] = []
        other = threading.Thread(
            target=lambda: got.extend(
                [cache.get("b", "cpu", lambda: "reloaded"), cache.get("c", "cpu", lambda: "c")]
            )
        )
        other.start()
        other.join(5)
        assert not other.is_alive(), "a lookup of b waited for a's load"
        assert got == ["model b", "c"]
    finally:
        release.set()
        loader.join(10)
    assert cache.get("a", "cpu", lambda: "again") == "model a"


def test_callers_of_the_same_model_share_one_load() -> None:
    cache = ModelCache(max_bytes=0)
    calls: list[int] = []
    gate = threading.Event()

    def factory() -> object:
        calls.append(1)
        assert gate.wait(10)
        return object()

    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("m", "cpu", factory))) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert len(got) == 4
    assert all(g is got[0] for g in got)


def test_least_recently_used_models_leave_first_beyond_the_budget() -> None:
    cache = ModelCache(max_bytes=250)
    cache.get("a", "cpu", lambda: _array(100))
    cache.get("b", "cpu", lambda: _array(100))
    cache.get("a", "cpu", lambda: _array(100, 1))  # a is used again: b is now the oldest
    cache.get("c", "cpu", lambda: _array(100))
    assert cache.loaded() == ["a@cpu", "c@cpu"]
    assert cache.nbytes() == 200
    cache.get("d", "cpu", lambda: _array(200))
    assert cache.loaded() == ["d@cpu"]  # a and c (oldest first) had to go
    cache.get("huge", "cpu", lambda: _array(1000))
    assert cache.loaded() == ["huge@cpu"]  # one model over the budget stays: the caller needs it
    assert cache.get("a", "cpu", lambda: _array(100, 7))[0] == 7  # evicted: loaded again


def test_no_budget_keeps_everything() -> None:
    cache = ModelCache(max_bytes=0)
    for i in range(5):
        cache.get(str(i), "cpu", lambda: _array(10**6))
    assert len(cache.loaded()) == 5


def test_the_budget_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from autovoice.config import get_settings

    assert get_settings().model_cache_max_bytes == 4 << 30
    monkeypatch.setenv("AUTOVOICE_MODEL_CACHE_MAX_BYTES", "150")
    get_settings.cache_clear()
    cache = ModelCache()
    cache.get("a", "cpu", lambda: _array(100))
    cache.get("b", "cpu", lambda: _array(100))
    assert cache.loaded() == ["b@cpu"]


def test_a_model_in_use_keeps_working_when_evicted() -> None:
    torch.manual_seed(0)
    cache = ModelCache(max_bytes=model_nbytes(torch.nn.Linear(64, 64)) + 1)
    net = cache.get("net", "cpu", lambda: torch.nn.Linear(64, 64).eval())
    x = torch.randn(3, 64)
    with torch.no_grad():
        before = net(x)
    cache.get("other", "cpu", lambda: torch.nn.Linear(64, 64))
    assert cache.loaded() == ["other@cpu"]  # net was evicted...
    with torch.no_grad():
        assert torch.equal(net(x), before)  # ...and still works, weights intact, for the caller holding it
    assert all(p.numel() for p in net.parameters())
    assert cache.get("net", "cpu", lambda: torch.nn.Linear(64, 64)) is not net  # a new lookup loads again


def test_a_failed_load_is_not_cached() -> None:
    cache = ModelCache(max_bytes=0)

    def broken() -> object:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get("m", "cpu", broken)
    assert cache.loaded() == []
    assert cache.get("m", "cpu", lambda: "ok") == "ok"


def test_model_sizes() -> None:
    lin = torch.nn.Linear(10, 20)  # 200 weights + 20 biases, float32
    assert model_nbytes(lin) == 220 * 4
    shared = torch.zeros(100, dtype=torch.float16)
    loaded = SimpleNamespace(
        net=lin, extra=[shared, shared], table={"a": np.zeros(50)}, torch=torch, name="x"
    )
    assert model_nbytes(loaded) == 220 * 4 + 200 + 50 * 8  # the shared tensor once; modules and strings 0
    index = SimpleNamespace(ntotal=1000, d=768)  # what a FAISS index exposes
    assert model_nbytes(index) == 1000 * 768 * 4
    assert model_nbytes(object()) == 0
