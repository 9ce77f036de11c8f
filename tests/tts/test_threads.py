"""Piper's ONNX sessions: a run alone gets every core, runs that overlap get ``tts_threads`` each, and
no thread spins (ONNX Runtime's default, a spinning thread per core, made concurrent TTS requests
fight over every core; one thread for every request made a lone request ~1.5x slower than Piper)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from autovoice.config import Settings
from autovoice.models.cache import CACHE
from autovoice.tts.piper_voice import builtin_voice_files
from autovoice.tts.sessions import SessionPair, session_options, usable_cores


@pytest.mark.parametrize("threads", [1, 2])
def test_voice_sessions_use_the_configured_threads(tmp_path: Path, threads: int) -> None:
    from autovoice import tts

    settings = Settings(data_dir=tmp_path, device="cpu", tts_threads=threads)
    CACHE.drop("piper:")
    try:
        voice = tts.load_voice(None, settings=settings)
        pair = voice._voice.session  # type: ignore[attr-defined]
        assert isinstance(pair, SessionPair)
        narrow = pair.get_session_options()
        wide = pair.get_session_options(wide=True)
        assert narrow.intra_op_num_threads == threads
        assert wide.intra_op_num_threads == max(threads, usable_cores())
        for options in (narrow, wide):
            assert options.inter_op_num_threads == 1
            assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        y, sr = tts.synthesize("Hello, world!", settings=settings)
    finally:
        CACHE.drop("piper:")
    assert sr == voice.sample_rate
    assert y.dtype == np.float32
    assert 0.3 * sr < y.size < 5 * sr
    assert float(np.max(np.abs(y))) > 0.1


def test_a_run_alone_is_wide_and_overlapping_runs_are_narrow() -> None:
    """One request at a time: every run on the wide session (the narrow one is never even built). Four
    requests at once: never two runs on the wide session at the same time, the others narrow, and
    each request's audio is whole."""
    import json

    from piper import PiperConfig, PiperVoice, SynthesisConfig

    files = builtin_voice_files()
    pair = SessionPair(files.model, threads=1, wide_threads=2)
    config = PiperConfig.from_dict(json.loads(files.config.read_text(encoding="utf-8")))
    voice = PiperVoice(config=config, session=pair)
    syn = SynthesisConfig()
    for text in ("One.", "Two sentences. In one request."):
        assert sum(c.audio_float_array.size for c in voice.synthesize(text, syn)) > 1000
    assert pair.runs == {"wide": 3, "narrow": 0}
    assert not pair.narrow_open  # a lone request never pays for the narrow session
    assert pair.in_flight == 0

    pair.open_narrow()  # what the first overlapping run does (the others meanwhile take the wide session)
    wide = pair.pick()[1]
    pair.done()
    inside = {"now": 0, "most": 0}
    lock = threading.Lock()
    wide_run = wide.run

    def counted_run(*args: object, **kwargs: object) -> object:
        with lock:
            inside["now"] += 1
            inside["most"] = max(inside["most"], inside["now"])
        try:
            return wide_run(*args, **kwargs)
        finally:
            with lock:
                inside["now"] -= 1

    wide.run = counted_run
    barrier = threading.Barrier(4)
    sizes: list[int] = []

    def request() -> None:
        barrier.wait()
        audio = voice.synthesize("A longer sentence, so that the four requests overlap.", syn)
        sizes.append(sum(c.audio_float_array.size for c in audio))

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sizes) == 4
    assert all(s > 1000 for s in sizes)
    assert pair.narrow_open
    assert pair.runs["narrow"] >= 1  # they overlapped
    assert inside["most"] == 1  # one wide run at a time, whatever the crowd
    assert pair.in_flight == 0


def test_one_core_needs_one_session() -> None:
    pair = SessionPair(builtin_voice_files().model, threads=1, wide_threads=1)
    assert pair.single


def test_zero_keeps_onnx_runtime_defaults() -> None:
    options = session_options(0)
    assert options.intra_op_num_threads == 0  # 0: one per core, ONNX Runtime's own choice
    with pytest.raises(RuntimeError, match="allow_spinning"):  # not set: spinning stays on
        options.get_session_config_entry("session.intra_op.allow_spinning")
