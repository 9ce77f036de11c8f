"""Compute ``src/autovoice/analysis/data/whisper_base_position_mean.npy`` (run once; see
:mod:`autovoice.analysis.content`): Whisper base's mean encoder output per position index over the 10
LibriSpeech speakers of the shared recordings, utterances 0-8 (each one window, as the engine encodes
them), float16. Positions no utterance reaches hold the mean of the last ones reached.

    .venv/bin/python scripts/whisper_position_mean.py [../shared/data/speech/librispeech]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from autovoice.analysis.content import POSITION_MEAN_FILE, POSITIONS, SR, encode_window
from autovoice.audio import load


def main() -> None:
    root = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[2] / "shared/data/speech/librispeech"
    )
    sums = np.zeros((POSITIONS, 512))
    counts = np.zeros(POSITIONS)
    files = [
        f for spk in sorted(p for p in root.iterdir() if p.is_dir()) for f in sorted(spk.glob("*.flac"))[:9]
    ]
    for f in files:
        y, _ = load(f, sr=SR, mono=True)
        e = encode_window(y[: POSITIONS * SR // 50])
        sums[: len(e)] += e
        counts[: len(e)] += 1
    reached = int(np.flatnonzero(counts)[-1]) + 1
    mean = sums / np.maximum(counts, 1)[:, None]
    tail = mean[max(reached - 50, 0) : reached].mean(0)
    mean[reached:] = tail
    POSITION_MEAN_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.save(POSITION_MEAN_FILE, mean.astype(np.float16))
    print(f"{len(files)} utterances, positions reached {reached} of {POSITIONS} -> {POSITION_MEAN_FILE}")


if __name__ == "__main__":
    main()
