"""Vocal separation speed and memory: Spleeter 2-stem (bundled weights) on the shared song.

Each measurement runs in its own child process, so that its peak resident memory (``ru_maxrss`` from
``os.wait4``) is its own: the 133 s song, plus a 30 s excerpt and the song looped to 400 s to show how
memory grows with length (it should grow by the input and the two output stems only, about 1 MB per
second of 44.1 kHz stereo audio, since the model works in fixed-size chunks). Times are wall-clock on the
CPU threads torch gets by default; the machine may be running other work.

Writes ``bench/results/separation.json`` and ``separation.md``. Needs ``../shared/data``.
Usage: ``python bench/separation.py [--method spleeter] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from _common import SONG, write_results

LENGTHS_S = (30.0, None, 400.0)  # None: the whole song


def child(seconds: float | None, method: str, device: str) -> dict[str, Any]:
    """One measurement (runs in a child process); prints and returns its figures."""
    import numpy as np
    import torch

    from autovoice.audio import load
    from autovoice.separation import resolve_method, separate

    song, sr = load(SONG, validate=False)
    if seconds is not None:  # cut or loop the song without a second full-length copy
        n, m = int(seconds * sr), song.shape[1]
        looped = np.empty((song.shape[0], n), dtype=np.float32)
        for start in range(0, n, m):
            looped[:, start : start + m] = song[:, : min(m, n - start)]
        song = looped
    rss_audio = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ran = resolve_method(method)
    t0 = time.perf_counter()
    if ran == "spleeter":
        from autovoice.separation.spleeter import load_spleeter

        load_spleeter(device=device)
    load_s = time.perf_counter() - t0
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0, t0 = _cpu_s(), time.perf_counter()
    stems = separate(song, sr=sr, method=method, device=device)  # type: ignore[arg-type]
    separate_s, cpu_s = time.perf_counter() - t0, _cpu_s() - cpu0
    assert stems.accompaniment is not None
    block = 1 << 20  # the check in blocks: no full-length temporaries in the peak
    error = max(
        float(
            np.max(
                np.abs(
                    stems.vocals[:, i : i + block]
                    + stems.accompaniment[:, i : i + block]
                    - song[:, i : i + block]
                )
            )
        )
        for i in range(0, song.shape[1], block)
    )
    doc = {
        "method": stems.method,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "audio_s": song.shape[1] / sr,
        "sr": sr,
        "channels": song.shape[0],
        "load_s": load_s,
        "separate_s": separate_s,
        "separate_cpu_s": cpu_s,
        "rtf": separate_s / (song.shape[1] / sr),
        "rss_after_audio_mb": rss_audio / 1024,
        "rss_after_model_mb": rss_loaded / 1024,
        "stems_sum_max_error": error,
    }
    print(json.dumps(doc))
    return doc


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(seconds: float | None, method: str, device: str) -> dict[str, Any]:
    """Run :func:`child` in a fresh interpreter; add its peak RSS from ``wait4``."""
    args = [sys.executable, __file__, "--child", "full" if seconds is None else str(seconds)]
    proc = subprocess.Popen(
        [*args, "--method", method, "--device", device], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child for {seconds} s failed with exit code {proc.returncode}")
    doc: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    doc["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux: KiB
    return doc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="spleeter")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(None if args.child == "full" else float(args.child), args.method, args.device)
        return

    runs = [measure(seconds, args.method, args.device) for seconds in LENGTHS_S]
    song = runs[1]
    short, long = runs[0], runs[2]
    # Growth of the peak with length, against the size of the input plus the two float32 stems.
    growth = (long["peak_rss_mb"] - short["peak_rss_mb"]) / (long["audio_s"] - short["audio_s"])
    arrays = 3 * song["channels"] * song["sr"] * 4 / 2**20  # MiB per second of audio
    res = {
        "method": song["method"],
        "device": args.device,
        "song": SONG.name,
        "runs": runs,
        "peak_rss_growth_mb_per_s": growth,
        "arrays_mb_per_s": arrays,
    }
    rows = [
        "| audio | method | model load | separation (wall) | RTF | CPU time | peak RSS | RSS, audio + model loaded |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r, label in zip(runs, ("30 s excerpt", "the song", "song looped"), strict=True):
        rows.append(
            f"| {label}, {r['audio_s']:.0f} s | {r['method']} | {r['load_s']:.1f} s | {r['separate_s']:.1f} s | "
            f"{r['rtf']:.3f} | {r['separate_cpu_s']:.1f} s | {r['peak_rss_mb']:.0f} MB | "
            f"{r['rss_after_model_mb']:.0f} MB |"
        )
    rows.append("")
    rows.append(
        f"Peak RSS grows by {growth:.2f} MB per second of audio; the input and the two stems alone take "
        f"{arrays:.2f} MB/s (44.1 kHz stereo float32). {song['torch_threads']} torch threads on "
        f"{args.device} (CPU time is the "
        "process's own user + system time)."
    )
    write_results("separation", res, "\n".join(rows))


if __name__ == "__main__":
    main()
