"""Core speed figures: CLI start-up, profile build (60 s of speech), analysis (3 min of audio).

Writes ``bench/results/core.json`` and ``core.md``. Needs ``../shared/data``.
Install time is measured by ``bench/install_time.sh`` (a fresh clone and an empty package cache).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import SONG, SPEECH, write_results

AUTOVOICE = Path(sys.executable).parent / "autovoice"


def timed(fn, repeat: int = 1) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    from autovoice.audio import load, save
    from autovoice.pipeline.enroll import build_profile

    help_s = timed(lambda: subprocess.run([str(AUTOVOICE), "--help"], capture_output=True, check=True), 5)

    # 60 s of one speaker's speech.
    files, total = [], 0.0
    for f in sorted((SPEECH / "2609").glob("*.flac")):
        files.append(f)
        total += load(f)[0].shape[-1] / 16_000
        if total >= 60:
            break
    y = np.concatenate([load(f, mono=True)[0] for f in files])[: 60 * 16_000]
    tmp = Path(tempfile.mkdtemp())
    speech60 = save(tmp / "speech60.flac", y, sr=16_000)
    cold_build = timed(lambda: build_profile([speech60], name="bench"))[0]
    warm_build = statistics.median(timed(lambda: build_profile([speech60], name="bench"), 3))

    # 3 minutes of music: the song, looped to 180 s, 44.1 kHz stereo.
    song, sr = load(SONG)
    reps = int(np.ceil(180 * sr / song.shape[1]))
    song180 = save(tmp / "song180.flac", np.tile(song, reps)[:, : 180 * sr], sr=sr)
    cli_analyze = timed(
        lambda: subprocess.run(
            [str(AUTOVOICE), "analyze", str(song180), "--json"], capture_output=True, check=True
        )
    )[0]
    from autovoice.analysis.report import analyze_file

    warm_analyze = statistics.median(timed(lambda: analyze_file(song180), 2))

    doc = {
        "help_seconds_median": statistics.median(help_s),
        "profile_build_60s_cold_seconds": cold_build,
        "profile_build_60s_warm_seconds": warm_build,
        "analyze_180s_cli_seconds": cli_analyze,
        "analyze_180s_warm_seconds": warm_analyze,
    }
    table = "\n".join(
        [
            "| measure | seconds | target |",
            "| --- | --- | --- |",
            f"| `autovoice --help` start-up (median of 5) | {doc['help_seconds_median']:.2f} | < 1 |",
            f"| profile build, 60 s of speech, first in process (models load) | {cold_build:.1f} | |",
            f"| profile build, 60 s of speech, models loaded | {warm_build:.1f} | |",
            f"| `autovoice analyze` on 3 min of 44.1 kHz stereo (whole CLI run) | {cli_analyze:.1f} | |",
            f"| analysis of 3 min, models loaded | {warm_analyze:.1f} | |",
        ]
    )
    write_results("core", doc, table)


if __name__ == "__main__":
    main()
