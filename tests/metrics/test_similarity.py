"""Speaker similarity: known-answer cosine tests, bad input, and real speakers from the shared recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autovoice.audio import load, resample
from autovoice.errors import AudioError, ParameterError
from autovoice.metrics import EMBEDDING_DIM, cosine_similarity, speaker_embedding, speaker_similarity
from autovoice.metrics.similarity import voiced_embedding_16k
from tests.support import SPEECH, speaker_files

SR = 16_000
#: Two female and two male LibriSpeech speakers.
SPEAKERS = ("367", "533", "1688", "2033")


def _utterance(speaker: str, index: int, seconds: float = 6.0) -> np.ndarray:
    """The first ``seconds`` of one utterance (6 s is plenty to tell speakers apart, and quick)."""
    y, _ = load(speaker_files(speaker)[index], sr=SR, mono=True)
    return y[: int(seconds * SR)]


@pytest.fixture(scope="module")
def embeddings() -> dict[tuple[str, int], np.ndarray]:
    """Embeddings of utterances 1 and 2 of each speaker in :data:`SPEAKERS`."""
    if not Path(SPEECH).is_dir():
        pytest.skip(f"shared recordings not found at {SPEECH}")
    return {(s, i): speaker_embedding(_utterance(s, i), sr=SR) for s in SPEAKERS for i in (1, 2)}


@pytest.mark.shared_data
def test_embedding_is_256_d_unit_norm(embeddings: dict[tuple[str, int], np.ndarray]) -> None:
    for e in embeddings.values():
        assert e.shape == (EMBEDDING_DIM,)
        assert e.dtype == np.float32
        assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
        assert (e >= 0).all()


@pytest.mark.shared_data
@pytest.mark.parametrize("speaker", SPEAKERS)
def test_same_speaker_scores_higher_than_any_other(
    speaker: str, embeddings: dict[tuple[str, int], np.ndarray]
) -> None:
    same = cosine_similarity(embeddings[speaker, 1], embeddings[speaker, 2])
    others = [cosine_similarity(embeddings[speaker, 1], embeddings[o, 2]) for o in SPEAKERS if o != speaker]
    assert same > 0.75
    assert same > max(others) + 0.1, (same, others)


@pytest.mark.shared_data
def test_sample_rate_and_channels_do_not_change_the_speaker(
    speech_dir: Path, embeddings: dict[tuple[str, int], np.ndarray]
) -> None:
    y = _utterance("1688", 1)
    y44 = resample(y, orig_sr=SR, target_sr=44_100)
    stereo = np.stack([y44, y44])
    e = speaker_embedding(stereo, sr=44_100)
    assert cosine_similarity(e, embeddings["1688", 1]) > 0.98


@pytest.mark.shared_data
def test_speaker_similarity_to_a_reference(
    speech_dir: Path, embeddings: dict[tuple[str, int], np.ndarray]
) -> None:
    y = _utterance("533", 2)
    own = speaker_similarity(y, sr=SR, reference_embedding=embeddings["533", 1])
    other = speaker_similarity(y, sr=SR, reference_embedding=embeddings["2033", 1])
    assert own == pytest.approx(cosine_similarity(embeddings["533", 2], embeddings["533", 1]), abs=1e-5)
    assert own > other


def test_cosine_similarity_known_answers() -> None:
    a = np.array([1.0, 0.0, 0.0])
    assert cosine_similarity(a, a) == pytest.approx(1.0)
    assert cosine_similarity(a, 5 * a) == pytest.approx(1.0)  # scale does not matter
    assert cosine_similarity(a, np.array([0.0, 2.0, 0.0])) == pytest.approx(0.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity(a, np.array([1.0, 1.0, 0.0])) == pytest.approx(np.sqrt(0.5))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (np.ones(3), np.ones(4)),  # different lengths
        (np.ones((2, 3)), np.ones((2, 3))),  # not 1-D
        (np.zeros(3), np.ones(3)),  # no direction
        (np.array([1.0, np.nan, 0.0]), np.ones(3)),  # NaN
    ],
)
def test_cosine_similarity_bad_vectors(a: np.ndarray, b: np.ndarray) -> None:
    with pytest.raises(ParameterError) as err:
        cosine_similarity(a, b)
    assert err.value.code == "invalid_parameter"


@pytest.mark.parametrize(
    ("y", "sr", "code"),
    [
        (np.zeros(SR * 2, np.float32), SR, "no_voiced_audio"),  # silence
        (np.full(SR // 100, 0.1, np.float32), SR, "no_voiced_audio"),  # 10 ms: shorter than a VAD frame
        (np.zeros(0, np.float32), SR, "audio_empty"),
        (np.full(SR, np.nan, np.float32), SR, "audio_invalid_samples"),
        (np.zeros((1, 2, 3), np.float32), SR, "invalid_audio_shape"),
    ],
)
def test_unusable_audio_is_refused(y: np.ndarray, sr: int, code: str) -> None:
    with pytest.raises(AudioError) as err:
        speaker_embedding(y, sr=sr)
    assert err.value.code == code


def test_bad_sample_rate_and_reference_shape() -> None:
    y = np.zeros(SR, np.float32)
    with pytest.raises(ParameterError):
        speaker_embedding(y, sr=0)
    with pytest.raises(ParameterError) as err:
        speaker_similarity(y, sr=SR, reference_embedding=np.ones(128))
    assert err.value.code == "invalid_parameter"


@pytest.mark.shared_data
def test_voiced_embedding_reports_and_caps_the_seconds_used(
    speech_dir: Path, embeddings: dict[tuple[str, int], np.ndarray]
) -> None:
    y = _utterance("1688", 1)  # 6 s of read speech with short pauses
    whole, seconds = voiced_embedding_16k(y, device="cpu")
    assert 3.0 < seconds <= 6.0  # silences longer than ~0.2 s are cut
    assert cosine_similarity(whole, embeddings["1688", 1]) == pytest.approx(1.0, abs=1e-5)
    capped, capped_s = voiced_embedding_16k(y, device="cpu", max_seconds=2.0)
    assert capped_s == pytest.approx(2.0)
    assert cosine_similarity(capped, whole) > 0.85  # 2 s already says who speaks


def test_our_mel_and_embedding_match_resemblyzers_own() -> None:
    """``embed_utterance`` replaces resemblyzer's librosa mel (a 1.6 s cold import) with numpy: same
    spectrogram, same embedding."""
    import librosa

    from autovoice.metrics.similarity import embed_utterance, mel_frames
    from autovoice.models.cache import load_voice_encoder

    rng = np.random.default_rng(0)
    t = np.arange(3 * 16_000) / 16_000
    wav = (0.3 * np.sin(2 * np.pi * 180 * t * (1 + 0.1 * t)) + 0.01 * rng.standard_normal(t.size)).astype(
        np.float32
    )
    theirs = librosa.feature.melspectrogram(y=wav, sr=16_000, n_fft=400, hop_length=160, n_mels=40).T
    ours = mel_frames(wav)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6 * float(theirs.max()))
    encoder = load_voice_encoder("cpu")
    np.testing.assert_allclose(embed_utterance(encoder, wav), encoder.embed_utterance(wav), atol=1e-5)
