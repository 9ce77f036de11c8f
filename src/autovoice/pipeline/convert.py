"""Song and speech conversion: separate -> track pitch -> plan -> convert -> remix -> measure.

No I/O of its own beyond the files it is given: :func:`convert_audio` works on arrays,
:func:`convert_file` adds loading and atomic writing of the outputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autovoice.analysis import estimate_f0
from autovoice.analysis.f0 import FRAME_HOP_S
from autovoice.audio import OUTPUT_FORMATS, load, resample, save, to_mono, validate_audio
from autovoice.config import Settings, get_settings
from autovoice.errors import ParameterError
from autovoice.pipeline.mix import remix
from autovoice.pipeline.options import ConversionOptions
from autovoice.pipeline.pitch_plan import ContentDecision, PitchPlan, decide_content, plan_pitch
from autovoice.pipeline.presets import preset_config
from autovoice.progress import ProgressCallback, no_progress, sub_progress

if TYPE_CHECKING:
    from autovoice.metrics.report import QualityReport
    from autovoice.profiles.profile import VoiceProfile
    from autovoice.separation import SeparationChoice

#: The engines work between these rates; other inputs are resampled for the engine and back.
ENGINE_MIN_SR, ENGINE_MAX_SR = 16_000, 48_000


@dataclass
class ConversionResult:
    """A finished conversion. Audio arrays are ``(channels, samples)`` at ``sr`` (the input's)."""

    mix: np.ndarray
    vocals: np.ndarray
    accompaniment: np.ndarray | None
    sr: int
    plan: PitchPlan
    report: QualityReport | None
    options: ConversionOptions
    separation: str  # what ran (``auto`` resolved)
    f0_method: str  # what ran (the preset's when not chosen)
    content: ContentDecision  # planned as speech or as a song, and why
    separation_choice: SeparationChoice | None = None  # why ``separation`` ran (or was skipped)
    timings: dict[str, float] = field(default_factory=dict)
    #: ``{"code", "message"}`` documents: the input or the result is suspect (see docs/metrics.md).
    warnings: list[dict[str, str]] = field(default_factory=list)
    source_f0: np.ndarray | None = None  # the source vocal's F0, Hz per 10 ms frame
    output: Path | None = None
    report_path: Path | None = None

    @property
    def audio_seconds(self) -> float:
        return float(self.mix.shape[-1] / self.sr)

    @property
    def processing_seconds(self) -> float:
        """Conversion time, metrics excluded (they are timed separately)."""
        return sum(v for k, v in self.timings.items() if k != "metrics")

    def to_dict(self, *, contours: bool = True) -> dict[str, Any]:
        """The result as JSON; ``contours`` adds the F0 arrays (for plots: the report file and the API)."""
        from autovoice.metrics.pitch import json_safe

        doc: dict[str, Any] = json_safe(
            {
                "output": str(self.output) if self.output else None,
                "report": str(self.report_path) if self.report_path else None,
                "profile": None,
                "options": self.options.to_params(),
                "preset": self.options.preset,
                "engine": self.options.engine,
                "f0_method": self.f0_method,
                "separation": self.separation,
                "separation_decision": (
                    self.separation_choice.to_dict() if self.separation_choice is not None else None
                ),
                "content": self.content.to_dict(),
                "warnings": self.warnings,
                "pitch_shift_semitones": round(self.plan.shift_semitones, 3),
                "pitch_plan": self.plan.to_dict(),
                "sample_rate": self.sr,
                "channels": int(self.mix.shape[0]),
                "audio_seconds": round(self.audio_seconds, 3),
                "processing_seconds": round(self.processing_seconds, 3),
                "rtf": round(self.processing_seconds / self.audio_seconds, 4),
                "timings": {k: round(v, 3) for k, v in self.timings.items()},
                "metrics": self.report.to_dict() if self.report else None,
                "f0": self.contours() if contours else None,
            }
        )
        return doc

    def contours(self, max_frames: int = 2000) -> dict[str, Any] | None:
        """Source, intended and achieved F0 on one grid, thinned to at most ``max_frames`` frames.

        Values are Hz rounded to 0.1, 0 where unvoiced; for plots (the web page draws them together).
        """
        if self.source_f0 is None:
            return None
        n = len(self.source_f0)
        step = max(1, int(np.ceil(n / max_frames)))
        achieved = self.report.achieved_f0 if self.report is not None else None

        def thin(f0: np.ndarray | None) -> list[float] | None:
            if f0 is None:
                return None
            f = np.zeros(n, np.float32)
            f[: min(n, len(f0))] = f0[:n]
            return [round(float(v), 1) for v in f[::step]]

        return {
            "hop_s": FRAME_HOP_S * step,
            "source": thin(self.source_f0),
            "intended": thin(self.plan.target_f0),
            "output": thin(achieved),
        }


def convert_audio(
    y: np.ndarray,
    *,
    sr: int,
    profile: VoiceProfile,
    options: ConversionOptions | None = None,
    accompaniment: np.ndarray | None = None,
    device: str = "cpu",
    settings: Settings | None = None,
    progress: ProgressCallback = no_progress,
) -> ConversionResult:
    """Convert a song or vocal held in memory into ``profile``'s voice.

    Parameters
    ----------
    y
        ``(samples,)`` or ``(channels, samples)`` float32 input at ``sr``.
    profile
        The target voice.
    options
        The conversion's choices (engine, F0 method, preset, pitch, separation, content, report level,
        engine options), already validated; default :class:`ConversionOptions` (). ``content`` decides
        how auto key plans (:func:`~autovoice.pipeline.pitch_plan.decide_content`): speech exactly onto
        the profile's speaking median, a song in whole semitones (octaves with an accompaniment) onto its
        singing range.
    accompaniment
        An accompaniment to mix back (same rate as ``y``), e.g. a stem you already have.

    Returns
    -------
    ConversionResult
        The mix, the converted vocals and the report; same length, rate and channels as ``y``.
    """
    from autovoice.engines import load_engine
    from autovoice.profiles.trained import check_conversion
    from autovoice.separation import separate

    opts = options or ConversionOptions()
    settings = settings or get_settings()
    # A trained-model engine needs the profile's model; auto key and the other engines its recordings.
    check_conversion(
        profile,
        engine=opts.engine,
        auto_key=opts.auto_key,
        engine_options=opts.engine_options,
        settings=settings,
    )
    validate_audio(y, sr=sr, settings=settings)
    cfg = preset_config(opts.preset)
    f0_method = opts.resolved_f0_method()
    layout = np.atleast_2d(np.asarray(y, dtype=np.float32))
    channels, length = layout.shape
    timings: dict[str, float] = {}
    engine = load_engine(opts.engine, device=device, settings=settings)  # before the slow work

    t0 = time.perf_counter()
    progress(0.0, "separate")
    stems = separate(
        layout,
        sr=sr,
        method=opts.separation,
        settings=settings,
        device=device,
        progress=sub_progress(progress, 0.0, 0.35),
    )
    acc = stems.accompaniment
    if accompaniment is not None:
        acc_given = np.atleast_2d(np.asarray(accompaniment, dtype=np.float32))
        acc = acc_given if acc is None else acc + _fit(acc_given, length)
    vocals = to_mono(stems.vocals)
    timings["separate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress(0.35, "pitch")
    esr = min(max(sr, ENGINE_MIN_SR), ENGINE_MAX_SR)
    v = resample(vocals, orig_sr=sr, target_sr=esr)
    track = estimate_f0(v, sr=esr, method=f0_method, hop_s=FRAME_HOP_S, device=device)
    content = decide_content(
        track,
        content=opts.content,
        accompaniment=acc is not None,
        accompaniment_db=None if accompaniment is not None else stems.accompaniment_db,
    )
    plan = plan_pitch(
        track,
        target=profile.vocal_range,
        semitones=opts.pitch_shift,
        auto_key=opts.auto_key,
        mode=content.used,
        keep_key=acc is not None,
        smooth_radius=cfg.f0_smooth_radius,
        cap_to_range=cfg.cap_to_range and opts.auto_key,
    )
    timings["pitch"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    converted = engine.convert(
        v,
        sr=esr,
        f0=track,
        target_f0=plan.target_f0,
        profile=profile,
        preset=opts.preset,
        options=opts.engine_options,
        progress=sub_progress(progress, 0.4, 0.85),
    )
    converted_native = _fit(resample(converted, orig_sr=esr, target_sr=sr)[None, :], length)[0]
    timings["convert"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress(0.85, "remix")
    from autovoice.audio import loudness_lufs

    input_lufs = loudness_lufs(layout, sr=sr)
    mixed = remix(
        converted_native,
        acc,
        sr=sr,
        channels=channels,
        length=length,
        target_lufs=input_lufs if np.isfinite(input_lufs) else None,
    )
    timings["remix"] = time.perf_counter() - t0

    report = None
    warnings: list[dict[str, str]] = []
    if opts.metrics != "off" and profile.embedding is None:
        warnings.append(
            {
                "code": "report_needs_recordings",
                "message": f"No quality report: profile '{profile.name}' has no recordings to measure the "
                "voice against. Add recordings of the voice to the profile to get one.",
            }
        )
    elif opts.metrics != "off" and profile.embedding is not None:
        t0 = time.perf_counter()
        progress(0.88, "measure")
        from autovoice.metrics.report import input_warnings, quality_report

        report = quality_report(
            source=v,
            converted=converted,
            sr=esr,
            intended_f0=plan.target_f0,
            profile_embedding=profile.embedding,
            identity_band=profile.identity_band,
            processing_seconds=sum(timings.values()),
            level=opts.metrics,
            f0_method=f0_method,
            device=device,
        )
        warnings.extend(input_warnings(report, separated=stems.method != "none" or acc is not None))
        warnings.extend(report.warnings)
        timings["metrics"] = time.perf_counter() - t0
    progress(1.0, "done")
    return ConversionResult(
        mix=mixed.audio,
        vocals=np.repeat(converted_native[None, :], channels, axis=0),
        accompaniment=None if acc is None else _fit(np.atleast_2d(acc), length),
        sr=sr,
        plan=plan,
        report=report,
        options=opts,
        separation=stems.method,
        f0_method=f0_method,
        content=content,
        separation_choice=stems.choice,
        timings=timings,
        warnings=warnings,
        source_f0=track.f0,
    )


def convert_file(
    input_path: str | os.PathLike[str],
    *,
    profile: VoiceProfile,
    options: ConversionOptions | None = None,
    output: str | os.PathLike[str] | None = None,
    report_path: str | os.PathLike[str] | None = None,
    accompaniment_path: str | os.PathLike[str] | None = None,
    stems_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    settings: Settings | None = None,
    progress: ProgressCallback = no_progress,
) -> ConversionResult:
    """Convert a file and write the result (and its report JSON) atomically.

    ``output`` defaults to ``<input stem>.<profile name>.wav`` next to the input; the report defaults to
    ``<output>.report.json``. ``stems_dir`` also keeps the converted vocals and the accompaniment.
    Nothing is written unless the whole conversion succeeds, and an interrupted conversion leaves
    nothing behind. Output folders must exist (``output_dir_missing``).
    """
    settings = settings or get_settings()
    opts = options or ConversionOptions()
    src = Path(input_path)
    out = Path(output) if output else default_output(src, profile)
    check_output(out)
    rep = Path(report_path) if report_path else out.with_name(out.name + ".report.json")
    for folder in {rep.parent, *([Path(stems_dir)] if stems_dir is not None else [])}:
        _check_dir(folder)
    y, sr = load(src, settings=settings)
    acc = None
    if accompaniment_path is not None:
        acc, acc_sr = load(accompaniment_path, settings=settings)
        acc = resample(acc, orig_sr=acc_sr, target_sr=sr)
    result = convert_audio(
        y,
        sr=sr,
        profile=profile,
        options=opts,
        accompaniment=acc,
        device=device,
        settings=settings,
        progress=progress,
    )
    written: list[Path] = []
    try:
        written.append(save(out, result.mix, sr=sr))
        result.output = out
        result.report_path = rep
        if stems_dir is not None:
            d = Path(stems_dir)
            written.append(save(d / f"{out.stem}.vocals.wav", result.vocals, sr=sr))
            if result.accompaniment is not None:
                written.append(save(d / f"{out.stem}.accompaniment.wav", result.accompaniment, sr=sr))
        doc = result.to_dict()
        doc["input"] = str(src)
        doc["profile"] = {"id": profile.id, "name": profile.name}
        written.append(write_json(rep, doc))
    except BaseException:
        for p in written:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        raise
    return result


def default_output(src: Path, profile: VoiceProfile, folder: Path | None = None) -> Path:
    """``<folder or the input's folder>/<input stem>.<profile name>.wav``."""
    return (folder or src.parent) / f"{src.stem}.{profile.name.replace(' ', '_')}.wav"


def check_output(out: Path) -> None:
    """Refuse an output format we cannot write, or a folder that does not exist, before any work."""
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in OUTPUT_FORMATS:
        raise ParameterError(
            "unsupported_output_format",
            f"Cannot write '{out.suffix}'. Use one of: {', '.join('.' + f for f in OUTPUT_FORMATS)}.",
            {"output": str(out)},
        )
    _check_dir(out.parent)


def _check_dir(folder: Path) -> None:
    if not folder.is_dir():
        raise ParameterError(
            "output_dir_missing",
            f"The output folder '{folder}' does not exist; create it first.",
            {"folder": str(folder)},
        )


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` atomically with the same file mode as the audio outputs."""
    from autovoice.audio.io import publish_file

    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False))
    publish_file(tmp, path)
    return path


def convert_speech(
    y: np.ndarray,
    *,
    sr: int,
    profile: VoiceProfile,
    pitch_shift: float | None = None,
    device: str = "cpu",
    settings: Settings | None = None,
    progress: ProgressCallback = no_progress,
) -> tuple[np.ndarray, float]:
    """Speech into ``profile``'s voice: no separation, no report. Mono in, mono out.

    ``pitch_shift`` ``None`` means exact auto key (the speech's median moves onto the profile's);
    a number fixes the shift, e.g. the one the first sentence of a stream got, so that sentences
    don't jump in pitch. Returns the audio and the shift used, in semitones. A profile with a trained
    model speaks through it; one without recordings has no range to move onto, so its shift is 0.
    """
    from autovoice.pipeline.options import options_for_profile

    if pitch_shift is None and profile.vocal_range is None:
        pitch_shift = 0.0
    options = options_for_profile(
        profile,
        pitch_shift=pitch_shift,
        auto_key=pitch_shift is None or None,
        separation="none",
        content="speech",
        metrics="off",
    )
    result = convert_audio(
        to_mono(y),
        sr=sr,
        profile=profile,
        options=options,
        device=device,
        settings=settings,
        progress=progress,
    )
    return np.asarray(result.mix[0]), result.plan.shift_semitones


def _fit(y: np.ndarray, length: int) -> np.ndarray:
    """Pad with zeros or trim the last axis to ``length``."""
    if y.shape[-1] >= length:
        return y[..., :length]
    pad = [(0, 0)] * (y.ndim - 1) + [(0, length - y.shape[-1])]
    return np.pad(y, pad)
