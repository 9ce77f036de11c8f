"""Where a converted voice falls against the voice's own recordings: the identity band and its verdict.

A speaker similarity on its own says little: Resemblyzer gives 0.8 to outputs that a strong verifier
rejects, and real recordings of one person range from 0.8 to 0.97 depending on the clip. So a profile
carries its own **band**: the enrollment audio is cut into :data:`BAND_CLIPS_MAX` or fewer clips of at
least :data:`BAND_CLIP_SECONDS` s, and each clip's embedding is compared with the mean embedding of the
others (leave one out). The band is the lowest and highest of those similarities: how similar the voice
is to itself from one clip to the next.

A conversion's similarity to the profile is then judged against the band (:func:`identity_verdict`):

``inside``
    At or above the band's low end: as similar to the profile as the voice's own recordings are.
``near``
    Within :data:`NEAR_MARGIN` below it.
``below``
    Further below: the judge does not hear this voice.

Calibrated on the shared LibriSpeech recordings (10 speakers, profiles from utterances 0-4, each compared
with every speaker's held-out utterances 5-9): of the 50 held-out utterances of the profile's own speaker,
31 fall inside the band, 18 near it and 1 below; all 450 of the other speakers' fall below it, the closest
0.13 under the band's low end. ``tests/metrics/test_identity.py`` checks this on four of the speakers.

The judge is Resemblyzer (GE2E), the speaker encoder AutoVoice ships; it is named in every verdict, so a
reader knows which ear said so.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

#: The speaker encoder that measures the band and the verdict.
IDENTITY_JUDGE = "resemblyzer"
#: Shortest clip (seconds of audio) the band is measured on.
BAND_CLIP_SECONDS = 6.0
#: Most clips the enrollment audio is cut into.
BAND_CLIPS_MAX = 12
#: Fewest clips a band needs (each compared with the mean of the others).
BAND_CLIPS_MIN = 3
#: How far below the band's low end a similarity is still ``near``.
NEAR_MARGIN = 0.10

Verdict = Literal["inside", "near", "below", "unmeasured"]


@dataclass(frozen=True)
class IdentityBand:
    """How similar a voice is to itself, clip against the rest of its recordings.

    Attributes
    ----------
    judge
        The speaker encoder (:data:`IDENTITY_JUDGE`).
    low, high, median
        Lowest, highest and median leave-one-out cosine similarity over the clips.
    clips
        How many clips were compared.
    clip_seconds
        Length of each clip, seconds.
    """

    judge: str
    low: float
    high: float
    median: float
    clips: int
    clip_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "median": round(self.median, 4),
            "clips": self.clips,
            "clip_seconds": round(self.clip_seconds, 2),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IdentityBand:
        return cls(
            judge=str(d["judge"]),
            low=float(d["low"]),
            high=float(d["high"]),
            median=float(d["median"]),
            clips=int(d["clips"]),
            clip_seconds=float(d["clip_seconds"]),
        )


def band_clips(n_samples: int, *, sr: int) -> list[tuple[int, int]]:
    """Sample ranges that cut ``n_samples`` of audio into equal clips for the band (``[]`` when it is
    shorter than :data:`BAND_CLIPS_MIN` clips of :data:`BAND_CLIP_SECONDS`)."""
    count = min(BAND_CLIPS_MAX, int(n_samples / sr // BAND_CLIP_SECONDS))
    if count < BAND_CLIPS_MIN:
        return []
    edges = np.linspace(0, n_samples, count + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def identity_band(embeddings: list[np.ndarray], *, clip_seconds: float) -> IdentityBand | None:
    """The band of a voice from the unit embeddings of its clips (``None`` under :data:`BAND_CLIPS_MIN`).

    Each clip's similarity is to the normalised mean of the other clips' embeddings.
    """
    if len(embeddings) < BAND_CLIPS_MIN:
        return None
    e = np.stack([np.asarray(x, dtype=np.float64) for x in embeddings])
    total = e.sum(axis=0)
    sims = []
    for row in e:
        rest = total - row
        sims.append(float(row @ rest / (np.linalg.norm(row) * np.linalg.norm(rest) + 1e-12)))
    return IdentityBand(
        judge=IDENTITY_JUDGE,
        low=min(sims),
        high=max(sims),
        median=float(np.median(sims)),
        clips=len(sims),
        clip_seconds=clip_seconds,
    )


def identity_verdict(similarity: float, band: IdentityBand | None) -> dict[str, Any]:
    """The report's ``identity`` object: the judge, the band, the output's similarity and the verdict.

    ``verdict`` is ``inside``, ``near`` or ``below`` (see the module docstring), or ``unmeasured`` when
    there is no band (a profile built before bands existed, or from under three clips' worth of audio) or
    no similarity (NaN: no voice found in the output).
    """
    verdict: Verdict
    if band is None or not math.isfinite(similarity):
        verdict = "unmeasured"
    elif similarity >= band.low:
        verdict = "inside"
    elif similarity >= band.low - NEAR_MARGIN:
        verdict = "near"
    else:
        verdict = "below"
    return {
        "judge": band.judge if band is not None else IDENTITY_JUDGE,
        "band": band.to_dict() if band is not None else None,
        "similarity": round(similarity, 4) if math.isfinite(similarity) else None,
        "verdict": verdict,
    }
