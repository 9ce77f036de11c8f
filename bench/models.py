"""Trained voice models (issue 11): load time, real-time factor and peak RAM of the ``rvc`` and ``sovits``
engines on real-size models with random weights.

Models, written as the real tools write them (``tests/engines/fakes.py``): an RVC v2 48k ``.pth`` (57 MB,
fp16) with an ``IVF,Flat`` index of 20 000 vectors, and a so-vits-svc 4.1 ``G_*.pth`` + ``config.json``
(192/768 widths, 44.1 kHz). The content encoder is a HuBERT base of real size (12 layers, 768 wide,
95 M parameters) with random weights in fairseq's layout, added as the user would
(``autovoice models add``). Random weights cost what trained ones cost: same shapes, same operations.

Each model runs in its own process (so its peak RSS is its own): cold load (checkpoint + index + encoder,
what the first conversion of a process pays), then the conversion of a 10 s sung-like clip at 44.1 kHz
three times; RTF is the median conversion time / 10 s, models warm.

    flock -x /work/notes/bench.flock .venv/bin/python bench/models.py [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import machine, write_results  # noqa: E402

CLIP_S = 10.0
SR = 44100


def _worker(kind: str, folder: Path, threads: int, device: str) -> dict[str, Any]:
    """Runs in a child process: load, convert three times, report."""
    from types import SimpleNamespace

    os.environ["AUTOVOICE_DATA_DIR"] = str(folder / "data")
    import numpy as np
    import psutil
    import torch

    torch.set_num_threads(threads)
    from autovoice.analysis.f0 import F0Track
    from autovoice.engines import get_engine
    from autovoice.engines.checkpoints import inspect_model
    from autovoice.profiles import ModelFiles
    from tests.engines.fakes import Model

    t = np.arange(int(CLIP_S * SR)) / SR
    f0 = 220 * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = np.asarray(sum(0.3 / k * np.sin(k * phase) for k in range(1, 9)), dtype=np.float32)
    frames = np.arange(int(CLIP_S / 0.01))
    track = F0Track(
        (220 * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5 * frames * 0.01))).astype(np.float32), 0.01, "b"
    )

    if kind == "rvc":
        files = ModelFiles(folder / "voice.pth", index=folder / "voice.index")
        info_kw: dict[str, Any] = {"index": files.index}
    else:
        files = ModelFiles(folder / "sovits" / "G_8000.pth", config=folder / "sovits" / "config.json")
        info_kw = {"config": files.config}
    rss0 = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    info = inspect_model(files.pth, **info_kw)
    profile = SimpleNamespace(name="bench", models=[Model("m", info, files)])
    engine = get_engine(kind, device=device)
    # the first conversion of a process loads the encoder and the model: time a 1 s one for that
    short = F0Track(track.f0[:100], 0.01, "b")
    engine.convert(y[:SR], sr=SR, f0=short, target_f0=short.f0, profile=profile)
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t1 = time.perf_counter()
        out = engine.convert(y, sr=SR, f0=track, target_f0=track.f0, profile=profile)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t1)
    assert out.shape == y.shape
    peak = psutil.Process().memory_info().rss
    try:
        import resource

        peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    except ImportError:  # pragma: no cover - not on Linux
        pass
    return {
        "kind": kind,
        "variant": info.variant,
        "model_mb": round(files.pth.stat().st_size / 1e6, 1),
        "load_and_first_s": round(first_s, 2),
        "convert_s": [round(x, 2) for x in times],
        "rtf": round(statistics.median(times) / CLIP_S, 3),
        "peak_rss_mb": round(peak / 2**20),
        "rss_before_mb": round(rss0 / 2**20),
        "threads": threads,
        "device": device,
    }


def _prepare(folder: Path) -> None:
    os.environ["AUTOVOICE_DATA_DIR"] = str(folder / "data")
    from autovoice.models.hubert import add_local
    from tests.engines.fakes import write_fairseq_hubert, write_index, write_rvc, write_sovits

    enc = write_fairseq_hubert(folder / "hubert_base.pt", hidden=768, layers=12, heads=12, ffn=3072, conv=512)
    add_local("hubert_base", enc)
    add_local("contentvec", enc)
    enc.unlink()
    write_rvc(folder / "voice.pth", version="v2", sr=48000, small=False)
    write_index(folder / "voice.index", dim=768, n=20000)
    write_sovits(folder / "sovits", version="4.1", small=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default="models")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker[0], Path(args.worker[1]), args.threads, args.device)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        _prepare(folder)
        print(f"models written in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        rows = []
        load_before = os.getloadavg()
        for kind in ("rvc", "sovits"):
            cmd = [sys.executable, __file__, "--worker", kind, str(folder), "--threads", str(args.threads)]
            res = subprocess.run([*cmd, "--device", args.device], capture_output=True, text=True, check=True)
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    load_after = os.getloadavg()
    doc = {
        "machine": machine(),
        "clip_s": CLIP_S,
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "results": rows,
    }
    table = "\n".join(
        [
            f"Trained models, random weights at real size, {CLIP_S:.0f} s clip at 44.1 kHz, "
            f"{args.threads} threads, {args.device}; 1-min load average {load_before[0]:.1f} before, "
            f"{load_after[0]:.1f} after (other work on the machine slows these figures down).",
            "",
            "| model | file | load + first 1 s conversion | convert 10 s (3 runs) | RTF (warm) | peak RSS |",
            "| --- | --- | --- | --- | --- | --- |",
            *(
                f"| {r['variant']} | {r['model_mb']} MB | {r['load_and_first_s']} s | "
                f"{', '.join(str(x) for x in r['convert_s'])} s | {r['rtf']} | {r['peak_rss_mb']} MB |"
                for r in rows
            ),
        ]
    )
    write_results(args.out, doc, table)


if __name__ == "__main__":
    main()
