"""Whole-file analysis for ``autovoice analyze``: F0 contour, vocal range, loudness, optional plot."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autovoice.analysis.f0 import F0Method, F0Track, estimate_f0
from autovoice.analysis.pitch import NOTE_NAMES, midi_to_hz
from autovoice.analysis.vocal_range import VocalRange, vocal_range
from autovoice.audio import load, loudness_lufs, peak_dbfs, probe, to_mono
from autovoice.errors import AudioError
from autovoice.progress import ProgressCallback, no_progress


@dataclass
class Analysis:
    """The result of :func:`analyze_file`."""

    path: str
    duration_s: float
    sample_rate: int
    channels: int
    f0: F0Track
    vocal_range: VocalRange | None
    range_note: str | None
    loudness_lufs: float
    peak_dbfs: float

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return round(x, 2) if np.isfinite(x) else None

        return {
            "file": self.path,
            "duration_s": round(self.duration_s, 3),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "f0_method": self.f0.method,
            "hop_s": self.f0.hop_s,
            "voiced_seconds": round(self.f0.voiced_seconds, 2),
            "vocal_range": self.vocal_range.to_dict() if self.vocal_range else None,
            "range_note": self.range_note,
            "loudness_lufs": num(self.loudness_lufs),
            "peak_dbfs": num(self.peak_dbfs),
        }


def analyze_file(
    path: str | os.PathLike[str],
    *,
    f0_method: F0Method | str = "fcpe",
    device: str = "cpu",
    plot: str | os.PathLike[str] | None = None,
    progress: ProgressCallback = no_progress,
) -> Analysis:
    """Load ``path``, track its F0, measure range and loudness, and optionally draw a PNG plot.

    The plot is written atomically; a failed analysis writes nothing.
    """
    progress(0.0, "load")
    info = probe(path)
    y, sr = load(path)
    progress(0.2, "f0")
    track = estimate_f0(to_mono(y), sr=sr, method=f0_method, device=device)  # type: ignore[arg-type]
    progress(0.8, "range")
    try:
        vr: VocalRange | None = vocal_range(track)
        note = None
    except AudioError as exc:
        vr, note = None, exc.message
    result = Analysis(
        path=str(path),
        duration_s=y.shape[-1] / sr,
        sample_rate=sr,
        channels=info.channels,
        f0=track,
        vocal_range=vr,
        range_note=note,
        loudness_lufs=loudness_lufs(y, sr=sr),
        peak_dbfs=peak_dbfs(y),
    )
    if plot is not None:
        progress(0.9, "plot")
        plot_f0(result, plot)
    progress(1.0, "done")
    return result


def plot_f0(result: Analysis, out: str | os.PathLike[str]) -> Path:
    """Draw the F0 contour on a log-frequency axis with note names, the range and the tessitura."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    track, vr = result.f0, result.vocal_range
    f0 = np.where(track.voiced, track.f0, np.nan)
    fig, ax = plt.subplots(figsize=(11, 4), dpi=110)
    try:
        if vr is not None:
            ax.axhspan(
                vr.tessitura_low_hz,
                vr.tessitura_high_hz,
                color="tab:green",
                alpha=0.12,
                label=f"tessitura {vr.to_dict()['tessitura_notes'][0]}–{vr.to_dict()['tessitura_notes'][1]}",
            )
            for hz, label in ((vr.lowest_hz, vr.lowest_note), (vr.highest_hz, vr.highest_note)):
                ax.axhline(hz, color="tab:red", lw=0.8, ls="--")
                ax.annotate(label, (0, hz), xytext=(2, 2), textcoords="offset points", color="tab:red")
        ax.plot(track.times, f0, lw=1.2, color="tab:blue", label=f"F0 ({track.method})")
        ax.set_yscale("log")
        voiced = track.f0[track.voiced]
        lo = float(np.min(voiced)) / 1.2 if voiced.size else 80.0
        hi = float(np.max(voiced)) * 1.2 if voiced.size else 800.0
        ax.set_ylim(lo, hi)
        midis = [m for m in range(24, 109) if lo <= midi_to_hz(m) <= hi and m % 12 in (0, 4, 7, 9)]
        ax.set_yticks([float(midi_to_hz(m)) for m in midis])
        ax.set_yticklabels([f"{NOTE_NAMES[m % 12]}{m // 12 - 1}" for m in midis])
        ax.minorticks_off()
        ax.set_xlabel("time (s)")
        ax.set_ylabel("pitch")
        ax.set_title(f"{Path(result.path).name}: F0 contour and vocal range")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right")
        out_path = Path(out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(f".{out_path.name}.part")
        fig.savefig(tmp, format="png", bbox_inches="tight")
        os.replace(tmp, out_path)
    finally:
        plt.close(fig)
    return out_path
