"""ONNX Runtime against PyTorch for the trained engines' synthesizers on the CPU (issue 19, item 7).

Builds RVC v2 48k and so-vits-svc 4.1 (44.1 kHz) at their real widths, with random weights from a fixed
seed (``tests/engines/fakes.py``), writes them as the trainers do and loads them back with AutoVoice's own
loaders (:func:`~autovoice.engines.rvc.model.build_rvc`, :func:`~autovoice.engines.sovits.model.build_sovits`),
so the network is the one a conversion runs. The "decoder" is everything from content features + F0 to
audio (``net.infer``: prior encoder, flow, NSF-HiFi-GAN); its random draws (prior noise, source phase and
noise) are inputs, drawn once the way :meth:`TrainedEngine.draws` does, so both runtimes compute the same
thing. Each is exported with ``torch.onnx.export`` and timed against PyTorch (``torch.no_grad``) on the same
inputs, with the same thread count, alternating the two, in one run.

Each decoder runs twice: whole (the NSF excitation inside the ONNX graph too, exported here) and split (the
excitation, a few cumulative sums, stays in PyTorch and is an input of the graph; its time counts in the
ONNX figure). The split exists because RVC's excitation does not survive the export: ONNX Runtime's linear
``Resize`` of the running phase is not monotonic to the last bit, the wrap detector sees thousands of
spurious wraps, the phase sum drifts to thousands of cycles where float32 loses the fraction, and the sine
is off by up to half a cycle after a few seconds (max |diff| 0.56 on 10 s).

RVC's split is what the ``rvc`` engine ships (option ``decoder``, default ``auto``): this bench exports and
runs it with the engine's own code (:func:`~autovoice.engines.rvc.onnx_decoder.export_decoder`,
:class:`~autovoice.engines.rvc.onnx_decoder.OnnxDecoder`: dynamic frames axis, no busy-waiting threads).
so-vits-svc's split (no gain, not shipped) is exported here.

``torch.onnx.export`` needs the ``onnx`` package (a dependency of AutoVoice; ``make install``).

Usage: ``python bench/onnx_decoders.py [--seconds 10] [--repeats 5] [--threads 2] [--only rvc-v2-48k]``
(about 5 min on 2 cores, ~3.5 min with ``--only rvc-v2-48k``). Writes ``bench/results/onnx_decoders.json``
and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._common import write_results  # noqa: E402

#: The issue's bar for shipping ONNX Runtime: at least this much faster, and outputs this close.
SPEEDUP_BAR = 1.25
PARITY_BAR = 1e-3
SEED = 19


def _f0(frames: int) -> np.ndarray:
    """A sung-like F0 track: a vibrato glide around 220 Hz with short unvoiced gaps, ``(frames,)``."""
    t = np.arange(frames)
    f0 = 220.0 * 2 ** (0.5 * np.sin(t / 40.0) + 0.02 * np.sin(t / 2.0))
    f0[(t % 150) < 12] = 0.0
    return f0.astype(np.float32)


def _draws(net: Any, frames: int) -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(SEED)
    harmonics = net.dec.harmonics
    return {
        "prior_noise": torch.randn(1, net.enc_p.out_channels, frames, generator=gen),
        "phase": torch.rand(1, harmonics, generator=gen),
        "source_noise": torch.randn(1, frames * net.hop_length, harmonics, generator=gen),
    }


def build_rvc_case(folder: Path, seconds: float) -> tuple[Any, Any, dict[str, Any]]:
    """RVC v2 48k: the network, a wrapper taking every input positionally, and the inputs."""
    import torch

    from autovoice.engines.rvc.model import build_rvc, f0_coarse
    from autovoice.models.safe_load import load_checkpoint
    from tests.engines.fakes import write_rvc

    path = write_rvc(folder / "rvc.pth", version="v2", sr=48000, small=False, seed=SEED)
    net = build_rvc(load_checkpoint(path), name="rvc.pth").float()
    frames = int(round(seconds * 100))  # RVC runs at 100 frames per second
    f0 = _f0(frames)
    rng = np.random.default_rng(SEED)
    inputs = {
        "phone": torch.from_numpy(rng.standard_normal((1, frames, 768)).astype(np.float32)),
        "pitch": torch.from_numpy(f0_coarse(f0))[None],
        "nsff0": torch.from_numpy(f0)[None],
        "sid": torch.tensor([0]),
        **_draws(net, frames),
    }

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(
            self, phone: Any, pitch: Any, nsff0: Any, sid: Any, prior: Any, phase: Any, noise: Any
        ) -> Any:
            return self.net.infer(
                phone, pitch, nsff0, sid, prior_noise=prior, phase=phase, source_noise=noise
            )

    return net, Decoder().eval(), inputs


def build_sovits_case(folder: Path, seconds: float) -> tuple[Any, Any, dict[str, Any]]:
    """so-vits-svc 4.1 (44.1 kHz, hop 512): the network, a positional wrapper, and the inputs."""
    import torch

    from autovoice.engines.sovits.model import build_sovits
    from autovoice.models.safe_load import load_checkpoint, load_config
    from tests.engines.fakes import write_sovits

    pth, cfg = write_sovits(folder / "sovits", version="4.1", small=False, seed=SEED)
    net = build_sovits(load_checkpoint(pth), load_config(cfg), name=pth.name).float()
    frames = int(round(seconds * net.sr / net.hop_length))
    f0 = _f0(frames)
    rng = np.random.default_rng(SEED)
    inputs = {
        "c": torch.from_numpy(rng.standard_normal((1, 768, frames)).astype(np.float32)),
        # unvoiced frames carry an interpolated F0, as the engine's interpolate_unvoiced gives
        "f0": torch.from_numpy(np.where(f0 > 0, f0, 220.0).astype(np.float32))[None],
        "uv": torch.from_numpy((f0 > 0).astype(np.float32))[None],
        "sid": torch.tensor([0]),
        **_draws(net, frames),
    }

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, c: Any, f0: Any, uv: Any, sid: Any, prior: Any, phase: Any, noise: Any) -> Any:
            return self.net.infer(
                c, f0, uv, sid, noise_scale=0.4, prior_noise=prior, phase=phase, source_noise=noise
            )

    return net, Decoder().eval(), inputs


def _interleaved(
    fns: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Time each function ``repeats`` times, alternating them (so a change in the machine's load hits both
    alike), after one untimed warm-up call each (first-call allocations, ORT's arena)."""
    outs = {k: fn() for k, fn in fns.items()}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            outs[k] = fn()
            times[k].append(time.perf_counter() - t0)
    return times, outs


def _failed(row: dict[str, Any], exc: Exception) -> None:
    row["export_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:400] if str(exc) else ''}"
    traceback.print_exc()


def _shipped_rvc(
    net: Any, inputs: dict[str, Any], threads: int, path: Path, row: dict[str, Any]
) -> Callable[[], Any] | None:
    """The ``rvc`` engine's own ONNX path: its export and its :class:`OnnxDecoder` (excitation in PyTorch)."""
    from autovoice.engines.rvc.onnx_decoder import OnnxDecoder, export_decoder

    try:
        t0 = time.perf_counter()
        export_decoder(net, path)
        row["export_s"] = round(time.perf_counter() - t0, 1)
        row["onnx_mb"] = round(path.stat().st_size / 1e6, 1)
    except Exception as exc:
        _failed(row, exc)
        return None
    dec = OnnxDecoder(path, net, threads=threads)
    x = dict(inputs)
    args = (x.pop("phone"), x.pop("pitch"), x.pop("nsff0"), x.pop("sid"))
    return lambda: dec.infer(*args, **x).numpy()


def _bench_export(
    name: str,
    wrapper: Any,
    inputs: dict[str, Any],
    threads: int,
    folder: Path,
    row: dict[str, Any],
    *,
    split: bool,
) -> Callable[[], Any] | None:
    """A graph exported here (fixed shapes): the whole decoder, or (``split``) all but the excitation, which
    is then computed in PyTorch on every run and fed to the graph."""
    import onnxruntime as ort
    import torch

    from autovoice.engines import nsf

    args = tuple(inputs.values())
    names = list(inputs)
    dec = wrapper.net.dec
    f0_key = "nsff0" if "nsff0" in inputs else "f0"

    def excitation() -> Any:
        with torch.no_grad():
            return dec.excitation(inputs[f0_key], phase=inputs["phase"], noise=inputs["source_noise"])

    export_model, export_args, export_names = wrapper, args, names
    if split:

        class Split(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = wrapper

            def forward(self, *xs: Any) -> Any:
                *rest, sines = xs
                original = nsf.sine_excitation
                nsf.sine_excitation = lambda *a, **k: sines  # type: ignore[assignment]
                try:
                    return self.inner(*rest)
                finally:
                    nsf.sine_excitation = original

        export_model, export_args, export_names = Split().eval(), (*args, excitation()), [*names, "sines"]

    onnx_path = folder / f"{name}{'-split' if split else ''}.onnx"
    try:
        t0 = time.perf_counter()
        with torch.no_grad():
            torch.onnx.export(
                export_model, export_args, str(onnx_path), input_names=export_names, output_names=["audio"], opset_version=17,
                dynamo=False,
            )  # fmt: skip
        row["export_s"] = round(time.perf_counter() - t0, 1)
        row["onnx_mb"] = round(onnx_path.stat().st_size / 1e6, 1)
    except Exception as exc:
        _failed(row, exc)
        return None

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    feed = {n: a.numpy() for n, a in zip(names, args, strict=True)}
    wanted = [i.name for i in sess.get_inputs()]  # constant or unused inputs (sid, phase) may be dropped

    def run_ort() -> Any:
        if split:
            feed["sines"] = excitation().numpy()
        return sess.run(None, {k: feed[k] for k in wanted})[0]

    return run_ort


def run_case(
    name: str, builder: Any, seconds: float, repeats: int, threads: int, folder: Path, *, split: bool = False
) -> dict[str, Any]:
    """Time one decoder in both runtimes. ``split``: only the network goes to ONNX; the NSF excitation
    (:func:`~autovoice.engines.nsf.sine_excitation`) stays in PyTorch, fed to the ONNX graph as an input,
    and its time is counted in the ONNX Runtime figure. RVC's split is the engine's shipped path."""
    import torch

    torch.set_num_threads(threads)
    net, wrapper, inputs = builder(folder, seconds)
    args = tuple(inputs.values())
    params = sum(p.numel() for p in net.parameters())
    row: dict[str, Any] = {
        "decoder": name,
        "seconds": seconds,
        "sr": net.sr,
        "params_m": round(params / 1e6, 2),
    }

    def run_torch() -> Any:
        with torch.no_grad():
            return wrapper(*args).numpy()

    if split and name.startswith("rvc"):
        row["decoder"] = f"{name} (shipped: excitation in PyTorch)"
        run_ort = _shipped_rvc(net, inputs, threads, folder / f"{name}-shipped.onnx", row)
    else:
        if split:
            row["decoder"] = f"{name} (excitation in PyTorch)"
        run_ort = _bench_export(name, wrapper, inputs, threads, folder, row, split=split)
    if run_ort is None:  # the export failed: report why, honestly, and keep the PyTorch figures
        times, _ = _interleaved({"torch": run_torch}, repeats)
        t = statistics.median(times["torch"])
        row.update(torch_s=round(t, 3), torch_rtf=round(t / seconds, 3), meets_bar=False)
        return row

    load_before = os.getloadavg()[0]
    times, outs = _interleaved({"torch": run_torch, "ort": run_ort}, repeats)
    ref_np, out = outs["torch"], outs["ort"]
    t_torch, t_ort = statistics.median(times["torch"]), statistics.median(times["ort"])
    diff = float(np.max(np.abs(out - ref_np)))
    row.update(
        torch_s=round(t_torch, 3),
        torch_rtf=round(t_torch / seconds, 3),
        torch_min_s=round(min(times["torch"]), 3),
        ort_s=round(t_ort, 3),
        ort_rtf=round(t_ort / seconds, 3),
        ort_min_s=round(min(times["ort"]), 3),
        speedup=round(t_torch / t_ort, 2),
        speedup_of_min=round(min(times["torch"]) / min(times["ort"]), 2),
        max_abs_diff=diff,
        out_peak=float(np.max(np.abs(ref_np))),
        torch_times=[round(t, 3) for t in times["torch"]],
        ort_times=[round(t, 3) for t in times["ort"]],
        load_avg_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)],
    )
    row["meets_bar"] = bool(row["speedup"] >= SPEEDUP_BAR and diff <= PARITY_BAR)
    print(
        f"{name}: PyTorch {t_torch:.2f} s, ORT {t_ort:.2f} s, x{row['speedup']}, diff {diff:.2e}", flush=True
    )
    return row


def table(rows: list[dict[str, Any]], threads: int) -> str:
    lines = [
        f"{threads} threads each, median of the timed runs; RTF = seconds per second of audio "
        f"(< 1 is faster than real time); per minute = RTF x 60 s. Bar: >= {SPEEDUP_BAR}x with max |diff| "
        f"<= {PARITY_BAR:g}.",
        "",
        "| decoder | audio | PyTorch s (RTF) | ONNX Runtime s (RTF) | speed-up | max abs diff | per minute: "
        "PyTorch / ORT | meets bar |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "export_error" in r:
            lines.append(
                f"| {r['decoder']} | {r['seconds']:g} s | {r['torch_s']} ({r['torch_rtf']}) | export failed: "
                f"{r['export_error']} | - | - | {r['torch_rtf'] * 60:.0f} s / - | no |"
            )
            continue
        lines.append(
            f"| {r['decoder']} | {r['seconds']:g} s | {r['torch_s']} ({r['torch_rtf']}) | {r['ort_s']} "
            f"({r['ort_rtf']}) | {r['speedup']}x | {r['max_abs_diff']:.1e} | {r['torch_rtf'] * 60:.0f} s / "
            f"{r['ort_rtf'] * 60:.0f} s | {'yes' if r['meets_bar'] else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=["rvc-v2-48k", "sovits-4.1"], default=None)
    ap.add_argument("--no-write", action="store_true", help="print the table only (a smoke run)")
    a = ap.parse_args()
    cases = {"rvc-v2-48k": build_rvc_case, "sovits-4.1": build_sovits_case}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, builder in cases.items():
            if a.only and name != a.only:
                continue
            for split in (False, True):
                rows.append(run_case(name, builder, a.seconds, a.repeats, a.threads, Path(tmp), split=split))
    import onnx
    import onnxruntime as ort
    import torch

    if a.no_write:
        print(table(rows, a.threads))
        return
    doc = {
        "settings": {"seconds": a.seconds, "repeats": a.repeats, "threads": a.threads, "seed": SEED},
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__, "onnx": onnx.__version__},
        "bar": {"speedup": SPEEDUP_BAR, "max_abs_diff": PARITY_BAR},
        "results": rows,
    }
    write_results("onnx_decoders", doc, table(rows, a.threads))


if __name__ == "__main__":
    main()
