"""DNSMOS: clean speech must outscore the same speech in white noise; short clips as documented."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from autovoice.audio import load, resample
from autovoice.errors import AudioError, ParameterError
from autovoice.metrics import DNSMOS_MIN_SECONDS, Dnsmos, dnsmos, load_dnsmos
from autovoice.metrics.dnsmos import dnsmos_windows
from autovoice.models.cache import CACHE
from tests.support import harmonic_tone, speaker_files

SR = 16_000
WINDOW = int(9.01 * SR)


def _speech(seconds: float) -> np.ndarray:
    """The first ``seconds`` of a 15 s male utterance (LibriSpeech 1688)."""
    y, _ = load(speaker_files("1688")[0], sr=SR, mono=True)
    return y[: int(seconds * SR)]


def _scores(d: Dnsmos) -> list[float]:
    return [d.sig, d.bak, d.ovrl, d.p808]


@pytest.mark.shared_data
def test_clean_speech_beats_speech_in_white_noise(speech_dir: Path) -> None:
    clean = _speech(9.01)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(clean)).astype(np.float32)
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2))  # SNR 0 dB
    noisy = np.clip(clean + noise, -1, 1)
    a, b = dnsmos(clean, sr=SR), dnsmos(noisy, sr=SR)
    assert a.windows == b.windows == 1
    assert all(1.0 <= s <= 5.0 for s in _scores(a) + _scores(b))
    assert a.ovrl > b.ovrl + 0.7, (a, b)
    assert a.bak > b.bak + 1.0, (a, b)
    assert a.ovrl > 2.5  # read speech from LibriSpeech: fair to good


@pytest.mark.shared_data
def test_short_clip_is_looped_like_the_reference(speech_dir: Path) -> None:
    from speechmos import dnsmos as reference

    clip = _speech(4.6)  # the reference doubles it to 9.2 s and scores its first 9.01 s window
    ours = dnsmos(clip, sr=SR)
    ref = reference.run(clip, SR)
    assert ours.windows == 1
    assert _scores(ours) == pytest.approx(
        [ref["sig_mos"], ref["bak_mos"], ref["ovrl_mos"], ref["p808_mos"]], abs=1e-4
    )


@pytest.mark.shared_data
def test_other_sample_rates_are_resampled(speech_dir: Path) -> None:
    clip = _speech(9.01)
    at_16k = dnsmos(clip, sr=SR)
    at_48k = dnsmos(resample(clip, orig_sr=SR, target_sr=48_000), sr=48_000)
    # The round trip through 48 kHz drops the top ~0.4 kHz below 8 kHz (the resampler's transition band);
    # the P.835 scores do not care, the P.808 model a little.
    assert _scores(at_48k)[:3] == pytest.approx(_scores(at_16k)[:3], abs=0.05)
    assert at_48k.p808 == pytest.approx(at_16k.p808, abs=0.2)


def test_windows_cover_the_whole_clip() -> None:
    # 10.5 s with a 9.01 s hop: one window at 0 s and one aligned to the end.
    y = harmonic_tone(180.0, sr=SR, seconds=10.5)
    calls: list[tuple[float, str]] = []
    d = dnsmos(y, sr=SR, hop_s=9.01, progress=lambda f, stage: calls.append((f, stage)))
    assert d.windows == 2
    assert calls == [(0.5, "dnsmos"), (1.0, "dnsmos")]
    assert all(1.0 <= s <= 5.0 for s in _scores(d))


def test_clip_at_the_minimum_is_scored_and_shorter_is_refused() -> None:
    d = dnsmos(harmonic_tone(200.0, sr=SR, seconds=DNSMOS_MIN_SECONDS), sr=SR)
    assert d.windows == 1
    assert all(math.isfinite(s) for s in _scores(d))
    with pytest.raises(AudioError) as err:
        dnsmos(harmonic_tone(200.0, sr=SR, seconds=DNSMOS_MIN_SECONDS - 0.1), sr=SR)
    assert err.value.code == "audio_too_short"
    assert err.value.details["min_s"] == DNSMOS_MIN_SECONDS


def test_models_load_once() -> None:
    assert load_dnsmos() is load_dnsmos()
    assert "dnsmos@cpu" in CACHE.loaded()


@pytest.mark.parametrize(
    ("y", "code"),
    [
        (np.zeros(0, np.float32), "audio_empty"),
        (np.full(SR * 3, np.nan, np.float32), "audio_invalid_samples"),
    ],
)
def test_unusable_audio_is_refused(y: np.ndarray, code: str) -> None:
    with pytest.raises(AudioError) as err:
        dnsmos(y, sr=SR)
    assert err.value.code == code


@pytest.mark.parametrize("hop_s", [0.0, -1.0, 10.0, math.nan])
def test_bad_hop_is_refused(hop_s: float) -> None:
    with pytest.raises(ParameterError) as err:
        dnsmos(np.zeros(SR * 3, np.float32), sr=SR, hop_s=hop_s)
    assert err.value.code == "invalid_parameter"


def test_unmeasured_serialises_as_null() -> None:
    d = Dnsmos.unmeasured().to_dict()
    assert d == {"sig": None, "bak": None, "ovrl": None, "p808": None, "windows": 0}
    json.dumps(d, allow_nan=False)


def test_windows_at_given_starts_match_the_hopped_score() -> None:
    # 20 s: windows at 0 s and at 9.01 s, then one asked for past the end is moved back to end there.
    y = harmonic_tone(180.0, sr=SR, seconds=20.0)
    y[9 * SR :] = harmonic_tone(300.0, sr=SR, seconds=11.0)
    first = dnsmos_windows(y, starts_s=[0.0])
    hopped = dnsmos(y[:WINDOW], sr=SR)
    assert first.windows == 1
    assert _scores(first) == pytest.approx(_scores(hopped), abs=1e-6)
    late = dnsmos_windows(y, starts_s=[50.0])
    at_end = dnsmos(y[-WINDOW:], sr=SR)
    assert _scores(late) == pytest.approx(_scores(at_end), abs=1e-6)
    both = dnsmos_windows(y, starts_s=[0.0, 50.0])
    assert both.windows == 2
    assert both.ovrl == pytest.approx((first.ovrl + late.ovrl) / 2, abs=1e-6)


def test_windows_need_a_start_and_enough_audio() -> None:
    with pytest.raises(ParameterError) as perr:
        dnsmos_windows(np.zeros(SR * 3, np.float32), starts_s=[])
    assert perr.value.code == "invalid_parameter"
    with pytest.raises(AudioError) as aerr:
        dnsmos_windows(np.zeros(SR, np.float32), starts_s=[0.0])
    assert aerr.value.code == "audio_too_short"
