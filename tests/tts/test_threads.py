"""Piper's ONNX session runs on a bounded number of threads that do not spin (``tts_threads``); ONNX
Runtime's default (a spinning thread per core) made concurrent TTS requests fight over every core."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autovoice.config import Settings
from autovoice.models.cache import CACHE


@pytest.mark.parametrize("threads", [1, 2])
def test_voice_session_uses_the_configured_threads(tmp_path: Path, threads: int) -> None:
    from autovoice import tts

    settings = Settings(data_dir=tmp_path, device="cpu", tts_threads=threads)
    CACHE.drop("piper:")
    try:
        voice = tts.load_voice(None, settings=settings)
        options = voice._voice.session.get_session_options()  # type: ignore[attr-defined]
        assert options.intra_op_num_threads == threads
        assert options.inter_op_num_threads == 1
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        y, sr = tts.synthesize("Hello, world!", settings=settings)
    finally:
        CACHE.drop("piper:")
    assert sr == voice.sample_rate
    assert y.dtype == np.float32
    assert 0.3 * sr < y.size < 5 * sr
    assert float(np.max(np.abs(y))) > 0.1


def test_zero_keeps_onnx_runtime_defaults() -> None:
    from autovoice.tts.piper_voice import session_options

    options = session_options(0)
    assert options.intra_op_num_threads == 0  # 0: one per core, ONNX Runtime's own choice
    with pytest.raises(RuntimeError, match="allow_spinning"):  # not set: spinning stays on
        options.get_session_config_entry("session.intra_op.allow_spinning")
