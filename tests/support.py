"""Test helpers: paths of the shared recordings and generated signals with known answers.

The recordings (LibriSpeech utterances and one CC BY song) live outside the repository: in
``$AUTOVOICE_TEST_DATA`` when it is set, else in ``../shared/data`` beside the clone.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pytest

    from autovoice.analysis import F0Track
    from autovoice.config import Settings
    from autovoice.profiles.profile import VoiceProfile

REPO = Path(__file__).resolve().parents[1]
#: The environment variable that says where the shared recordings are.
TEST_DATA_ENV = "AUTOVOICE_TEST_DATA"
SHARED_DATA = Path(os.environ.get(TEST_DATA_ENV) or REPO.parent / "shared" / "data").expanduser().absolute()
SPEECH = SHARED_DATA / "speech" / "librispeech"
SONG = SHARED_DATA / "song" / "karissa_hobbs-lets_go_fishin.ogg"


def missing_recordings() -> list[Path]:
    """The parts of the shared recordings that are not there (empty when they all are)."""
    return [p for p in (SPEECH, SONG) if not p.exists()]


FEMALE = ("367", "533", "1998", "3080", "3331")
MALE = ("1688", "2033", "2414", "2609", "3005")


def speaker_files(speaker: str) -> list[Path]:
    """The sorted utterance files of one LibriSpeech speaker."""
    return sorted((SPEECH / speaker).glob("*.flac"))


def speech_clip(folder: Path, seconds: float = 4.0) -> Path:
    """``seconds`` of speaker 1688 (male) written as ``folder/clip.wav``: a plain vocal to convert."""
    import soundfile as sf

    y, sr = sf.read(speaker_files("1688")[0], dtype="float32")
    out = folder / "clip.wav"
    sf.write(out, y[: int(seconds * sr)], sr)
    return out


def harmonic_tone(
    f0: np.ndarray | float, *, sr: int, seconds: float | None = None, n_harmonics: int = 12
) -> np.ndarray:
    """A voice-like harmonic tone (1/k amplitudes) following ``f0`` (Hz per sample, or constant)."""
    if np.isscalar(f0):
        assert seconds is not None
        f = np.full(int(sr * seconds), float(f0))  # type: ignore[arg-type]
    else:
        f = np.asarray(f0, dtype=np.float64)
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1) if k * f.max() < sr / 2)
    return (0.3 * np.asarray(y) / np.max(np.abs(y))).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# generated voices with a known F0 (the engine and live tests)
# ------------------------------------------------------------------------------------------------
#: The frame hop (s) of the known F0 tracks below: frame i at i * 10 ms.
F0_HOP_S = 0.01
#: The rate of :func:`sung_vocal` (a trained model's native rate is usually 40 or 44.1 kHz).
VOCAL_SR = 44_100


def melody(seconds: float, *, sr: int, notes: tuple[float, ...], vibrato: float = 0.0) -> np.ndarray:
    """Per-sample F0 (Hz): equal-length notes with an optional 5 Hz vibrato (fraction of F0)."""
    n = int(sr * seconds)
    t = np.arange(n) / sr
    step = np.asarray(notes)[np.minimum((t / seconds * len(notes)).astype(int), len(notes) - 1)]
    return np.asarray(step * (1 + vibrato * np.sin(2 * np.pi * 5 * t)))


def known_track(f_per_sample: np.ndarray, *, sr: int, voiced: np.ndarray | None = None) -> F0Track:
    """The known F0 of a generated signal on the 10 ms grid (frame i at i * 10 ms)."""
    from autovoice.analysis import F0Track

    n = int(np.ceil(len(f_per_sample) / sr / F0_HOP_S))
    idx = np.minimum((np.arange(n) * F0_HOP_S * sr).astype(int), len(f_per_sample) - 1)
    f0 = f_per_sample[idx].astype(np.float32)
    if voiced is not None:
        f0[~voiced] = 0.0
    return F0Track(f0, F0_HOP_S, "known")


def voice_like(f_per_sample: np.ndarray, *, sr: int, seed: int = 0) -> np.ndarray:
    """A harmonic tone with 0.3 s noise bursts (fricative-like) every second: voiced and unvoiced."""
    y = harmonic_tone(f_per_sample, sr=sr, n_harmonics=30).astype(np.float64)
    rng = np.random.default_rng(seed)
    seg = int(0.3 * sr)
    for start in range(int(0.7 * sr), len(y) - seg, sr):
        y[start : start + seg] = 0.05 * rng.standard_normal(seg)
    return y.astype(np.float32)


def voicing(n_samples: int, *, sr: int) -> np.ndarray:
    """Voiced mask (10 ms frames) matching :func:`voice_like`'s noise bursts."""
    t = np.arange(int(np.ceil(n_samples / sr / F0_HOP_S))) * F0_HOP_S
    return ~(((t % 1.0) >= 0.7) & ((t % 1.0) < 1.0) & (t >= 0.7))


def breathy_voice(f0: np.ndarray, *, sr: int, seed: int = 0) -> np.ndarray:
    """A harmonic tone following ``f0`` (Hz per sample) with a little breath noise."""
    rng = np.random.default_rng(seed)
    y = harmonic_tone(f0, sr=sr) + 0.003 * rng.standard_normal(len(f0)).astype(np.float32)
    return y.astype(np.float32)


def sung_vocal(seconds: float = 1.5, *, sr: int = VOCAL_SR) -> tuple[np.ndarray, F0Track]:
    """A sung-like tone: 220 Hz with vibrato and 8 harmonics, a silent gap from 0.6 to 0.8 s."""
    from autovoice.analysis import F0Track

    hop = 0.01
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 220 * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(0.3 / k * np.sin(k * phase) for k in range(1, 9))
    gap = (t > 0.6) & (t < 0.8)
    y[gap] = 0
    frames = np.arange(int(seconds / hop))
    track = 220 * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5 * frames * hop))
    track[(frames * hop > 0.6) & (frames * hop < 0.8)] = 0
    return y.astype(np.float32), F0Track(track.astype(np.float32), hop, "test")


def engine_profile(features: dict[str, np.ndarray], name: str = "target") -> VoiceProfile:
    """A profile holding only the engine features given (full keys, e.g. ``world.mcep_mean_v``);
    ``build_profile`` is tested elsewhere."""
    from autovoice.profiles.profile import SampleQuality, VoiceProfile

    return VoiceProfile(
        id="prof_000000000000",
        name=name,
        created_at="2024-01-01T00:00:00+00:00",
        revision=1,
        embedding=np.zeros(256, np.float32),
        vocal_range=None,  # type: ignore[arg-type]
        quality=SampleQuality(0.0, 0.0, 0.0, 0.0, 0.0, 1),
        sample_names=["generated"],
        features=features,
    )


def tone_voice_profile(sr: int = 16_000) -> VoiceProfile:
    """A profile of a synthetic voice around 220 Hz (world features, vocal range), built in ~1 s."""
    from autovoice.analysis import estimate_f0, vocal_range
    from autovoice.engines.world.engine import WorldEngine
    from autovoice.profiles.profile import VoiceProfile

    t = np.arange(int(4.0 * sr)) / sr
    f0 = 220.0 * 2 ** (2.0 * np.sin(2 * np.pi * 0.5 * t) / 12)  # +-2 semitones
    y = breathy_voice(f0, sr=sr)
    y[int(1.9 * sr) : int(2.1 * sr)] = 0.01 * np.random.default_rng(1).standard_normal(int(0.2 * sr))
    track = estimate_f0(y, sr=sr)
    feats = WorldEngine().profile_features(y, sr=sr, f0=track)
    return VoiceProfile(
        id="prof_000000000001",
        name="tone",
        created_at="2026-01-01T00:00:00Z",
        revision=1,
        embedding=None,
        vocal_range=vocal_range(track),
        quality=None,
        sample_names=[],
        features={f"world.{k}": v for k, v in feats.items()},
    )


# ------------------------------------------------------------------------------------------------
# local services (distributed-mode tests)
# ------------------------------------------------------------------------------------------------
#: The local PostgreSQL database the distributed-mode tests make their schemas in.
PG = "postgresql://postgres@127.0.0.1:5432/test"


def reachable(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(code: str, *, env: dict[str, str], log: Path) -> Any:
    """Run ``python -c code`` in a new process group with ``env`` (plus this process's environment)."""
    import subprocess
    import sys

    full = {**os.environ, **env}
    fh = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-c", code], env=full, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: Any, sig: int | None = None) -> None:
    """Stop a process started by :func:`spawn` (and its children) and reap it."""
    import signal

    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig or signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except Exception:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None) -> None:
    """Poll ``check`` every 0.2 s until it holds; after ``timeout`` s fail, with ``what`` and the tail of
    ``log``. What a test waits for instead of sleeping."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.2)


def http_ok(url: str) -> bool:
    """Whether ``GET url`` answers 200 within a second."""
    import httpx

    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def postgres_and_redis() -> bool:
    """Whether the local PostgreSQL (5432) and Redis (6379) the distributed-mode tests use answer."""
    return reachable(5432) and reachable(6379)


# ------------------------------------------------------------------------------------------------
# the CLI, the profile store and the web page
# ------------------------------------------------------------------------------------------------
def cli_json(capsys: pytest.CaptureFixture[str]) -> Any:
    """The JSON document a ``--json`` command printed (what was captured since the last read)."""
    import json

    return json.loads(capsys.readouterr().out)


def stored_profile_files(settings: Settings) -> list[str]:
    """Every file under the profiles folder, relative and sorted (a profile's lock file is not data)."""
    root = settings.profiles_dir
    files = root.rglob("*") if root.is_dir() else []
    return sorted(str(p.relative_to(root)) for p in files if p.name != ".lock")


def assert_no_horizontal_scroll(page: Any) -> None:
    """The Playwright ``page`` does not scroll sideways (1 px of rounding allowed)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow} px"


def queued_conversion(ctx: Any, clip: Path, profile_id: str, **params: Any) -> str:
    """A conversion job row (``queued``) with ``clip`` as its input, as the API would store it; its id.
    ``ctx`` is a :class:`autovoice.jobs.JobContext`; ``params`` go over the fast, unseparated defaults."""
    import shutil

    from autovoice.jobs import JobStore, new_job_id
    from autovoice.storage import BlobStore

    job_id = new_job_id()
    folder = BlobStore(ctx.settings).job_dir(job_id)
    folder.mkdir(parents=True)
    shutil.copy(clip, folder / "input.wav")
    base = {"profile_id": profile_id, "input": "input.wav", "preset": "fast", "separation": "none"}
    JobStore(ctx.db, BlobStore(ctx.settings)).create(job_id, kind="conversion", params={**base, **params})
    return job_id
