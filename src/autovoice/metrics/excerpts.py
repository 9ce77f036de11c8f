"""Where the ``fast`` report listens: a few excerpts of a vocal, chosen where it is most voiced and loudest.

The ``fast`` quality report measures a bounded amount of audio whatever the song's length. It picks up to
:data:`FAST_EXCERPTS` non-overlapping excerpts of :data:`EXCERPT_SECONDS` (one DNSMOS window each) and
runs every measure there: DNSMOS on each excerpt, the F0 re-track and pitch accuracy on their frames, the
speaker embedding on their voiced audio.
"""

from __future__ import annotations

import math

import numpy as np

from autovoice.audio import frame_rms_db
from autovoice.metrics.dnsmos import WINDOW_SECONDS

#: Most excerpts the ``fast`` report measures.
FAST_EXCERPTS = 3
#: Length of one excerpt, seconds: one DNSMOS window.
EXCERPT_SECONDS = WINDOW_SECONDS
#: Candidate excerpt starts are this far apart, seconds.
_STEP_S = 0.5
#: Loudness range over which a frame's level counts toward an excerpt's score, dB below the loudest frame.
_LOUDNESS_RANGE_DB = 40.0


def select_excerpts(
    y: np.ndarray,
    *,
    sr: int,
    voiced: np.ndarray,
    hop_s: float,
    count: int = FAST_EXCERPTS,
    seconds: float = EXCERPT_SECONDS,
) -> list[tuple[float, float]]:
    """Up to ``count`` non-overlapping excerpts of ``y`` where it is most voiced and loudest.

    Each frame scores ``voiced + loudness`` (loudness: the frame's level mapped from 40 dB below the
    loudest frame..the loudest onto 0..1); an excerpt scores the sum over its frames. Excerpts are taken
    greedily, best first, from starts on a 0.5 s grid (and the last possible start).

    Parameters
    ----------
    y
        ``(samples,)`` mono float audio.
    sr
        Its sample rate, Hz.
    voiced
        ``(frames,)`` voicing per ``hop_s`` frame (for example ``intended_f0 > 0``); missing frames count
        as unvoiced.
    hop_s
        Frame period of ``voiced``, seconds. Excerpt starts fall on this grid.
    count
        Most excerpts to return (>= 1).
    seconds
        Length of each excerpt, seconds.

    Returns
    -------
    list of (start_s, end_s)
        Sorted by start. Audio no longer than ``seconds`` gives one excerpt, the whole of it; otherwise
        every excerpt lies inside the audio and is ``seconds`` long.
    """
    duration = len(y) / sr
    if duration <= seconds:
        return [(0.0, duration)]
    n_frames = math.ceil(duration / hop_s)
    win = math.ceil(seconds / hop_s - 1e-9)
    last_start = int(math.floor((duration - seconds) / hop_s + 1e-9))
    v = np.zeros(n_frames)
    vv = np.asarray(voiced, dtype=bool)[:n_frames]
    v[: len(vv)] = vv
    level = frame_rms_db(np.asarray(y, dtype=np.float32), sr=sr, frame_s=hop_s)
    loud = np.zeros(n_frames)
    if len(level):
        loud[: min(len(level), n_frames)] = np.clip(
            1.0 + (level[:n_frames] - level.max()) / _LOUDNESS_RANGE_DB, 0.0, 1.0
        )
    cum = np.concatenate([[0.0], np.cumsum(v + loud)])
    step = max(1, round(_STEP_S / hop_s))
    starts = np.unique(np.r_[np.arange(0, last_start + 1, step), last_start])
    scores = cum[np.minimum(starts + win, n_frames)] - cum[starts]
    chosen: list[int] = []
    free = np.ones(len(starts), dtype=bool)
    while len(chosen) < count and free.any():
        best = int(np.flatnonzero(free)[np.argmax(scores[free])])
        chosen.append(int(starts[best]))
        free &= np.abs(starts - starts[best]) >= win
    return [(s * hop_s, s * hop_s + seconds) for s in sorted(chosen)]
