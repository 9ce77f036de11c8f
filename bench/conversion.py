"""Conversion costs a user feels: CLI wall time, the report per level, engine and model reuse.

1. ``autovoice convert`` on a 15 s clip (LibriSpeech speaker 2033, 16 kHz), cold (a new process each
   time, as a user runs it), with the report ``off``, ``fast`` (the default) and ``full``; median of 3.
2. The whole shared song (133 s, 44.1 kHz stereo), separated with Spleeter, preset ``balanced``: the
   report's cost per level against the conversion's own time (separation + pitch + engine + remix).
3. Reuse, in one process: the first conversion of a clip (models and the engine load) against the
   next ones (everything comes from the model cache), and the engine's own construction time.

Writes ``bench/results/conversion.json`` and ``.md``. Needs ``../shared/data``. ~6 min on 2 cores.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import SONG, SPEECH, write_results

AUTOVOICE = Path(sys.executable).parent / "autovoice"
TARGET = "367"


def cli_wall(tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    from autovoice.audio import load, save

    parts, total = [], 0.0
    for f in sorted((SPEECH / "2033").glob("*.flac")):
        y, sr = load(f, mono=True)
        parts.append(y)
        total += len(y) / sr
        if total >= 15.0:
            break
    clip = tmp / "clip15.wav"
    save(clip, np.concatenate(parts)[: 15 * 16_000], sr=16_000)
    samples = [str(f) for f in sorted((SPEECH / TARGET).glob("*.flac"))[:5]]
    subprocess.run(
        [str(AUTOVOICE), "profile", "create", "target", *samples], env=env, check=True, capture_output=True
    )
    out: dict[str, Any] = {"clip_seconds": 15.0}
    for level in ("off", "fast", "full"):
        walls = []
        for i in range(3):
            t0 = time.perf_counter()
            subprocess.run(
                [str(AUTOVOICE), "convert", str(clip), "-p", "target", "-o", str(tmp / f"out_{level}_{i}.wav"),
                 "--separation", "none", "--auto-key", "--metrics", level],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
            walls.append(time.perf_counter() - t0)
        out[level] = {"median_s": statistics.median(walls), "runs_s": walls}
        print("cli", level, out[level], flush=True)
    return out


def song_report_cost() -> dict[str, Any]:
    from autovoice.audio import load
    from autovoice.pipeline import ConversionOptions, convert_audio
    from autovoice.pipeline.enroll import build_profile

    prof = build_profile(sorted((SPEECH / TARGET).glob("*.flac"))[:5], name="song-target")
    y, sr = load(SONG)
    rows: dict[str, Any] = {}
    for level in ("off", "fast", "full"):
        opts = ConversionOptions.parse(separation="spleeter", auto_key=True, metrics=level)
        res = convert_audio(y, sr=sr, profile=prof, options=opts)
        t = dict(res.timings)
        report_s = t.pop("metrics", 0.0)
        conversion_s = sum(t.values())
        rows[level] = {
            "audio_seconds": res.audio_seconds,
            "timings": res.timings,
            "conversion_s": conversion_s,
            "report_s": report_s,
            "report_share": report_s / conversion_s,
        }
        print("song", level, rows[level], flush=True)
    return rows


def reuse() -> dict[str, Any]:
    from autovoice.audio import load
    from autovoice.engines import get_engine
    from autovoice.pipeline import ConversionOptions, convert_audio
    from autovoice.pipeline.enroll import build_profile

    prof = build_profile(sorted((SPEECH / TARGET).glob("*.flac"))[:5], name="reuse-target")
    t0 = time.perf_counter()
    for _ in range(100):
        get_engine("world")
    construct_s = (time.perf_counter() - t0) / 100
    y, sr = load(sorted((SPEECH / "2033").glob("*.flac"))[6], mono=True)
    opts = ConversionOptions.parse(separation="none", auto_key=True)
    from autovoice.models.cache import CACHE

    CACHE.clear()  # the first conversion loads every model it needs, as in a new process
    CACHE.load_seconds.clear()
    walls = []
    for _ in range(4):
        t0 = time.perf_counter()
        convert_audio(y, sr=sr, profile=prof, options=opts)
        walls.append(time.perf_counter() - t0)
    return {
        "clip_seconds": len(y) / sr,
        "engine_construct_s": construct_s,
        "first_s": walls[0],
        "warm_median_s": statistics.median(walls[1:]),
        "saved_s": walls[0] - statistics.median(walls[1:]),
        "model_load_s": dict(CACHE.load_seconds),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = {**os.environ, "AUTOVOICE_DATA_DIR": str(tmp / "data")}
        cli = cli_wall(tmp, env)
    song = song_report_cost()
    warm = reuse()
    lines = [
        "| `autovoice convert`, 15 s clip, cold process | report off | report fast (default) | report full |",
        "| --- | --- | --- | --- |",
        f"| wall time, median of 3 | {cli['off']['median_s']:.2f} s | {cli['fast']['median_s']:.2f} s | "
        f"{cli['full']['median_s']:.2f} s |",
        "",
        "| song 133 s, Spleeter, balanced | conversion s | report s | report / conversion |",
        "| --- | --- | --- | --- |",
        *(
            f"| report `{lvl}` | {r['conversion_s']:.1f} | {r['report_s']:.1f} | {r['report_share'] * 100:.0f}% |"
            for lvl, r in song.items()
        ),
        "",
        "Stage times with the report off: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in song["off"]["timings"].items())
        + ".",
        "",
        "| reuse in one process (12 s clip, balanced, report fast) | seconds |",
        "| --- | --- |",
        f"| first conversion (models load) | {warm['first_s']:.2f} |",
        f"| next conversions, median (models and engine from the cache) | {warm['warm_median_s']:.2f} |",
        f"| saved per conversion by reuse | {warm['saved_s']:.2f} |",
        f"| building a `world` engine object | {warm['engine_construct_s'] * 1e6:.0f} µs |",
        "",
        "Model loads in the first conversion: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in warm["model_load_s"].items())
        + ".",
    ]
    write_results("conversion", {"cli": cli, "song": song, "reuse": warm}, "\n".join(lines))


if __name__ == "__main__":
    main()
