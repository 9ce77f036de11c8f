"""The ``autovoice`` command line.

Heavy modules (numpy, torch, the models) are imported inside the commands, so ``autovoice --help``
starts fast. Exit codes: 0 success, 2 bad input or usage, 1 internal failure. With ``--json`` a command
prints exactly one JSON document on stdout (its result, or ``{"error": {...}}``) and nothing else there;
progress and logs go to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main

from autovoice import __version__
from autovoice.clitools import (
    JsonOpt,
    command_path,
    emit,
    progress_bar,
    readable_help,
    report_error,
    table,
)
from autovoice.errors import AutoVoiceError

if TYPE_CHECKING:
    from autovoice.analysis.vocal_range import VocalRange
    from autovoice.profiles import SampleQuality, TrainedModel, VoiceProfile
    from autovoice.profiles.trained import StagedModel

log = logging.getLogger("autovoice")

app = typer.Typer(
    name="autovoice",
    help="AutoVoice: voice profiles, singing voice conversion and speech, measured. Offline, CPU or GPU.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
profile_app = typer.Typer(help="Create, list, show and delete voice profiles.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")
models_app = typer.Typer(
    help="List and download model weights that are not bundled, or add your own.", no_args_is_help=True
)
app.add_typer(models_app, name="models")

# The service's commands import nothing heavy at module level, so `autovoice --help` stays fast.
from autovoice.service.cli import apikey_app, serve, worker  # noqa: E402

app.add_typer(apikey_app, name="apikey")
app.command("serve")(serve)
app.command("worker")(worker)

from autovoice.live_cli import live_cmd  # noqa: E402  (imports nothing heavy at module level)

app.command("live")(live_cmd)

#: :func:`run` honours these anywhere on the command line, after the subcommand too.
_VERBOSE_FLAGS = ("-v", "--verbose")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"autovoice {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug details to stderr (anywhere on the line).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    _configure_logging(verbose)


def _configure_logging(verbose: bool) -> None:
    """AutoVoice's own debug lines with ``-v``; third-party libraries stay at warnings either way."""
    from autovoice.config import get_settings
    from autovoice.service.logs import configure_logging, log_json

    configure_logging("DEBUG" if verbose else "WARNING", json=log_json(get_settings()))


def _device() -> str:
    from autovoice.config import get_settings
    from autovoice.models.devices import resolve_device

    return resolve_device(get_settings().device)


def _print_profile(p: VoiceProfile) -> None:
    r, q = p.vocal_range, p.quality
    typer.echo(f"Profile {p.name!r}  id={p.id}  revision={p.revision}  created={p.created_at}")
    if r is None or q is None:
        typer.echo("  recordings none (a trained model alone: give a manual pitch, not auto key)")
    else:
        _print_range(r, q)
    for m in p.models:
        _print_model(m)


def _print_model(m: TrainedModel) -> None:
    d = m.to_dict()
    extras = [f"{d['sample_rate'] / 1000:g} kHz" if d["sample_rate"] else None]
    extras += ["F0" if d["f0"] else "no F0" if d["f0"] is not None else None]
    extras += [f"{d['speakers']} speaker(s)" if d["speakers"] else None, d["embedder"]]
    extras += [f"index {d['index_dim']}-d" if d["index_dim"] else None]
    variant = f" {d['variant']}" if d["variant"] else ""
    typer.echo(
        f"  model      {m.id}  {m.name!r}  {m.kind}{variant}, "
        + ", ".join(str(x) for x in extras if x)
        + f", {m.size_bytes / 2**20:.1f} MiB"
    )


def _print_range(r: VocalRange, q: SampleQuality) -> None:
    typer.echo(
        f"  range      {r.lowest_note}–{r.highest_note} ({r.lowest_hz:.0f}–{r.highest_hz:.0f} Hz, "
        f"{r.span_semitones:.1f} semitones), median {r.to_dict()['median_note']} ({r.median_hz:.0f} Hz)"
    )
    t = r.to_dict()["tessitura_notes"]
    typer.echo(
        f"  tessitura  {t[0]}–{t[1]} ({r.tessitura_low_hz:.0f}–{r.tessitura_high_hz:.0f} Hz); "
        f"rests on {r.voiced_seconds:.1f} s voiced ({r.confidence} confidence)"
    )
    if r.style != "unknown":
        sings = r.singing()
        how = "as measured" if r.style == "sung" else "estimated from speech"
        typer.echo(
            f"  voice      {r.style}; songs aim at a singing median of {sings.to_dict()['median_note']} "
            f"({sings.median_hz:.0f} Hz, {how})"
        )
    typer.echo(
        f"  samples    {q.n_samples} file(s), {q.duration_s:.1f} s, {q.voiced_s:.1f} s voiced, "
        f"SNR ≈ {q.snr_db:.0f} dB, silence {q.silence_ratio * 100:.0f}%, "
        f"clipped {q.clipped_fraction * 100:.3f}%"
    )
    for w in q.warnings:
        typer.secho(f"  warning    {w}", fg=typer.colors.YELLOW)


# -- profile commands ----------------------------------------------------------------------------
_ModelOpt = Annotated[
    Path | None, typer.Option("--model", help="A trained model: RVC/Applio .pth or so-vits-svc G_*.pth.")
]
_IndexOpt = Annotated[Path | None, typer.Option("--index", help="The RVC model's FAISS .index file.")]
_ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="The so-vits-svc model's config.json (required for it).")
]
_ClusterOpt = Annotated[
    Path | None, typer.Option("--cluster", help="A so-vits-svc cluster or feature-retrieval model.")
]


def _stage(model: Path, index: Path | None, config: Path | None, cluster: Path | None) -> StagedModel:
    from autovoice.pipeline.enroll import stage_model

    return stage_model(model, index=index, config=config, cluster=cluster)


@profile_app.command("create")
def profile_create(
    name: Annotated[str, typer.Argument(help="Unique profile name.")],
    samples: Annotated[
        list[Path] | None,
        typer.Argument(help="Recordings of the voice (10 s to a few minutes); optional with --model."),
    ] = None,
    model: _ModelOpt = None,
    index: _IndexOpt = None,
    config: _ConfigOpt = None,
    cluster: _ClusterOpt = None,
    replace: Annotated[bool, typer.Option("--replace", help="Rebuild an existing profile.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build a voice profile from recordings (embedding, vocal range, quality report) and/or a trained
    model (RVC v1/v2, Applio, so-vits-svc 4.x)."""
    from autovoice.pipeline.enroll import enroll
    from autovoice.profiles import ProfileStore, validate_profile_name

    store = ProfileStore()
    name = validate_profile_name(name)
    if model is None and (index or config or cluster):
        raise _usage("--index, --config and --cluster go with --model FILE.pth.")
    if not samples and model is None:
        raise _usage("Give recordings of the voice (SAMPLE...), a trained model (--model FILE.pth), or both.")
    if store.exists(name) and not replace:  # checked before the slow analysis, and again by save()
        from autovoice.errors import ConflictError

        raise ConflictError(
            "profile_exists",
            f"A profile named '{name}' already exists. Delete it first or replace it.",
            {"profile": name},
        )
    with progress_bar(bool(samples) and not as_json) as progress:
        profile = enroll(
            name,
            samples or (),
            model=None if model is None else lambda: _stage(model, index, config, cluster),
            save=lambda p, staged: store.save(p, replace=replace, models=staged),
            device=_device() if samples else "cpu",
            progress=progress,
        )
    emit(profile.summary(), as_json, lambda: _print_profile(profile))


@profile_app.command("add-model")
def profile_add_model(
    name: Annotated[str, typer.Argument(help="Profile name or id.")],
    model: Annotated[Path, typer.Argument(help="RVC/Applio .pth or so-vits-svc G_*.pth.")],
    index: _IndexOpt = None,
    config: _ConfigOpt = None,
    cluster: _ClusterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a trained model to a profile (checked first; nothing is stored if it is refused)."""
    from autovoice.profiles import ProfileStore

    store = ProfileStore()
    store.path_of(name)  # profile_not_found before copying a large file
    with _stage(model, index, config, cluster) as staged:
        added = store.add_model(name, staged)
    emit(added.to_dict(), as_json, lambda: _print_model(added))


@profile_app.command("remove-model")
def profile_remove_model(
    name: Annotated[str, typer.Argument(help="Profile name or id.")],
    model_id: Annotated[str, typer.Argument(help="The model's id (mdl_..., see `autovoice profile show`).")],
    as_json: JsonOpt = False,
) -> None:
    """Remove a trained model (and its files) from a profile."""
    from autovoice.profiles import ProfileStore

    removed = ProfileStore().remove_model(name, model_id)
    emit(
        {"deleted": removed.id, "name": removed.name, "profile": name},
        as_json,
        lambda: typer.echo(f"Removed model {removed.id} ({removed.name!r}) from {name!r}."),
    )


@profile_app.command("list")
def profile_list(as_json: JsonOpt = False) -> None:
    """List voice profiles."""
    from autovoice.profiles import ProfileStore

    profiles = ProfileStore().list()

    def human() -> None:
        if not profiles:
            typer.echo("No profiles yet. Create one with `autovoice profile create NAME SAMPLE...`.")
            return
        rows = [
            (
                p.name,
                p.id,
                f"{p.vocal_range.lowest_note}–{p.vocal_range.highest_note}" if p.vocal_range else "–",
                f"{p.quality.voiced_s:.1f} s" if p.quality else "–",
                ", ".join(m.kind for m in p.models) or "–",
                p.revision,
            )
            for p in profiles
        ]
        table(("NAME", "ID", "RANGE", "VOICED", "MODELS", "REVISION"), rows)

    emit({"profiles": [p.summary() for p in profiles]}, as_json, human)


@profile_app.command("show")
def profile_show(
    name: Annotated[str, typer.Argument(help="Profile name or id.")], as_json: JsonOpt = False
) -> None:
    """Show one profile: range, tessitura, sample quality, trained models."""
    from autovoice.profiles import ProfileStore

    profile = ProfileStore().get(name)
    emit(profile.summary(), as_json, lambda: _print_profile(profile))


@profile_app.command("delete")
def profile_delete(
    name: Annotated[str, typer.Argument(help="Profile name or id.")], as_json: JsonOpt = False
) -> None:
    """Delete a profile and its files."""
    from autovoice.profiles import ProfileStore

    profile = ProfileStore().delete(name)
    emit(
        {"deleted": profile.id, "name": profile.name},
        as_json,
        lambda: typer.echo(f"Deleted profile {profile.name!r} ({profile.id})."),
    )


# -- analysis ------------------------------------------------------------------------------------
@app.command("analyze")
def analyze_cmd(
    file: Annotated[Path, typer.Argument(help="Audio file (wav, flac, ogg, mp3, m4a, opus).")],
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the F0 contour and range as a PNG.")
    ] = None,
    f0_method: Annotated[
        str, typer.Option("--f0-method", help="Pitch tracker (list: `autovoice engines`).")
    ] = "fcpe",
    as_json: JsonOpt = False,
) -> None:
    """Analyse a recording: F0 contour, vocal range, loudness."""
    from autovoice.analysis.report import analyze_file

    with progress_bar(not as_json) as progress:
        result = analyze_file(file, f0_method=f0_method, device=_device(), plot=plot, progress=progress)
    doc = result.to_dict()

    def human() -> None:
        typer.echo(
            f"{file.name}: {doc['duration_s']:.1f} s, {doc['sample_rate']} Hz, {doc['channels']} ch, "
            f"loudness {doc['loudness_lufs']} LUFS, peak {doc['peak_dbfs']} dBFS"
        )
        typer.echo(f"  voiced     {doc['voiced_seconds']:.1f} s (F0 by {doc['f0_method']})")
        r = doc["vocal_range"]
        if r is None:
            typer.echo(f"  range      not measured: {doc['range_note']}")
        else:
            typer.echo(
                f"  range      {r['lowest_note']}–{r['highest_note']} "
                f"({r['lowest_hz']:.0f}–{r['highest_hz']:.0f} Hz), "
                f"tessitura {r['tessitura_notes'][0]}–{r['tessitura_notes'][1]}, median {r['median_note']} "
                f"({r['confidence']} confidence)"
            )
        if plot is not None:
            typer.echo(f"  plot       {plot}")

    emit(doc, as_json, human)


# -- conversion ----------------------------------------------------------------------------------
#: Audio file suffixes a folder given to ``convert`` is searched for.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".webm", ".aac", ".aif", ".aiff")
#: The CLI flag an error is about, by its field or else its code, for the hint after it (messages
#: themselves name fields, never flags).
_FLAGS = {
    "engine": "--engine",
    "f0_method": "--f0-method",
    "preset": "--preset",
    "pitch_shift": "--pitch",
    "auto_key": "--auto-key",
    "separation": "--separation",
    "metrics": "--metrics",
    "engine_options": "--engine-options",
    "block_ms": "--block-ms",
}
_CODE_FLAGS = {
    "unknown_engine": "--engine",
    "invalid_f0_method": "--f0-method",
    "invalid_preset": "--preset",
    "invalid_separation": "--separation",
    "invalid_metrics_level": "--metrics",
    "invalid_pitch_shift": "--pitch",
    "invalid_engine_options": "--engine-options",
    "no_voiced_audio": "--pitch N (instead of --auto-key)",
    "profile_exists": "--replace",
    "model_unavailable": "--separation none",
    "auto_key_needs_recordings": "--pitch N (instead of --auto-key)",
    "profile_needs_recordings": "--engine",
    "model_config_required": "--config config.json",
    "invalid_sample_rate": "--sample-rate",
    "engine_cannot_stream": "--engine world",
    "audio_devices_unavailable": "--input FILE -o OUT",
}


@app.command("convert")
def convert_cmd(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Songs or vocals (wav, flac, ogg, mp3, m4a, opus), or folders of them."),
    ],
    profile: Annotated[str, typer.Option("--profile", "-p", help="Target voice profile (name or id).")],
    output: Annotated[
        str | None,  # the text as typed: a trailing "/" says "a folder", which a Path would drop
        typer.Option(
            "--output",
            "-o",
            metavar="OUT|OUTDIR/",
            help="Output file (.wav/.flac/.ogg/.mp3) for one input; a folder for several. "
            "A folder ending in '/' is created if it does not exist.",
        ),
    ] = None,
    pitch: Annotated[
        float | None, typer.Option("--pitch", help="Transpose by N semitones (-24..24).")
    ] = None,
    auto_key: Annotated[
        bool, typer.Option("--auto-key", help="Move the melody into the profile's range.")
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="Conversion engine (list: `autovoice engines`); default: the kind of the profile's "
            "trained model, else world.",
        ),
    ] = None,
    f0_method: Annotated[
        str | None,
        typer.Option("--f0-method", help="Pitch tracker, default the preset's (list: `autovoice engines`)."),
    ] = None,
    preset: Annotated[str, typer.Option("--preset", help="fast, balanced or quality.")] = "balanced",
    separation: Annotated[
        str,
        typer.Option("--separation", help="auto (Demucs if present, else Spleeter), demucs, spleeter, none."),
    ] = "auto",
    metrics: Annotated[
        str, typer.Option("--metrics", help="Quality report: full, fast (bounded windows) or off.")
    ] = "fast",
    engine_options: Annotated[
        str | None, typer.Option("--engine-options", help="The engine's own options as JSON (experts).")
    ] = None,
    accompaniment: Annotated[
        Path | None, typer.Option("--accompaniment", help="Accompaniment to mix back in (one input only).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Quality report JSON (one input; default: next to the output)."),
    ] = None,
    stems: Annotated[
        Path | None, typer.Option("--stems", help="Also write the converted vocals and accompaniment here.")
    ] = None,
    contours: Annotated[
        bool, typer.Option("--contours", help="With --json: include the F0 contours (long arrays).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Convert songs or vocals into a profile's voice, keeping melody and words, and measure them.

    Several inputs (or a folder) need -o OUTDIR/ (created when it ends in '/'); models load once, a bad
    file is reported and the others go on; the exit code is 2 if any failed.
    """
    from autovoice.pipeline import check_output, default_output
    from autovoice.pipeline.options import options_for_profile
    from autovoice.profiles import ProfileStore

    target = ProfileStore().get(profile)
    options = options_for_profile(
        target,
        engine=engine,
        f0_method=f0_method,
        preset=preset,
        pitch_shift=pitch,
        auto_key=auto_key or None,
        separation=separation,
        metrics=metrics,
        engine_options=engine_options,
    )
    files = _expand_inputs(inputs)
    batch = len(files) > 1 or any(p.is_dir() for p in inputs)
    out_path = Path(output) if output is not None else None
    # "-o converted/" names a folder even when it does not exist yet (the README's own form).
    folder_named = output is not None and output.endswith(("/", os.sep))
    if batch and (accompaniment is not None or report is not None):
        raise _usage("--accompaniment and --report take one input; convert the files one at a time.")
    if batch and out_path is None:
        raise _usage("Several inputs need an output folder: -o OUTDIR/.")
    if batch and out_path is not None and out_path.suffix and not out_path.is_dir() and not folder_named:
        raise _usage(f"'{output}' looks like a file; several inputs need an output folder (-o OUTDIR/).")
    to_folder = batch or folder_named or (out_path is not None and out_path.is_dir())
    if to_folder and out_path is not None and not out_path.exists() and not folder_named:
        raise _missing_folder(
            out_path, f"; create it, or end the name with '/' (-o {output}/) to have it created"
        )
    outs = [default_output(f, target, out_path) if to_folder or out_path is None else out_path for f in files]
    new_folder = out_path if folder_named and out_path is not None and not out_path.is_dir() else None
    for out in {o.parent: o for o in outs}.values():
        if out.parent != new_folder:  # a folder about to be created has nothing to check yet
            check_output(out)
    if new_folder is not None:
        _create_output_folder(new_folder)
    try:
        _convert_all(
            files,
            outs,
            target,
            options,
            batch=batch,
            accompaniment=accompaniment,
            report=report,
            stems=stems,
            contours=contours,
            as_json=as_json,
        )
    finally:
        if new_folder is not None and new_folder.is_dir() and not any(new_folder.iterdir()):
            new_folder.rmdir()  # nothing was written into it: this run leaves no trace


def _missing_folder(folder: Path, fix: str) -> AutoVoiceError:
    from autovoice.errors import ParameterError

    return ParameterError(
        "output_dir_missing", f"The output folder '{folder}' does not exist{fix}.", {"folder": str(folder)}
    )


def _create_output_folder(folder: Path) -> None:
    """Create a missing output folder (and its parents), and say so on stderr."""
    if folder.exists():
        raise _usage(f"'{folder}' is a file, not a folder; choose another output folder.")
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise _missing_folder(folder, f" and could not be created ({exc.strerror})") from None
    typer.echo(f"Created the output folder {folder}{os.sep}", err=True)


def _convert_all(
    files: list[Path],
    outs: list[Path],
    target: VoiceProfile,
    options: Any,
    *,
    batch: bool,
    accompaniment: Path | None,
    report: Path | None,
    stems: Path | None,
    contours: bool,
    as_json: bool,
) -> None:
    device = _device()
    docs: list[dict[str, Any]] = []
    failures: list[tuple[Path, AutoVoiceError]] = []
    for src, out in zip(files, outs, strict=True):
        try:
            docs.append(
                _convert_one(
                    src,
                    out,
                    target,
                    options,
                    accompaniment=accompaniment,
                    report=report,
                    stems=stems,
                    device=device,
                    contours=contours,
                    as_json=as_json,
                    show=not batch,
                )
            )
        except AutoVoiceError as exc:
            if not batch:
                raise
            failures.append((src, exc))
            docs.append({"input": str(src), "error": exc.to_dict()})
            if not as_json:
                report_error(exc, False)
    if not batch:
        return
    emit({"results": docs, "failed": len(failures)}, as_json, lambda: _print_batch(docs))
    if failures:
        raise typer.Exit(2)


def _convert_one(
    src: Path,
    out: Path,
    target: VoiceProfile,
    options: Any,
    *,
    accompaniment: Path | None,
    report: Path | None,
    stems: Path | None,
    device: str,
    contours: bool,
    as_json: bool,
    show: bool,
) -> dict[str, Any]:
    from autovoice.pipeline import convert_file

    with progress_bar(not as_json) as progress:
        result = convert_file(
            src,
            profile=target,
            options=options,
            output=out,
            report_path=report,
            accompaniment_path=accompaniment,
            stems_dir=stems,
            device=device,
            progress=progress,
        )
    doc = result.to_dict(contours=contours)
    doc["input"] = str(src)
    doc["profile"] = {"id": target.id, "name": target.name}
    if show:
        emit(doc, as_json, lambda: _print_conversion(src, doc, target.name))
    elif not as_json:
        for w in doc["warnings"]:
            typer.secho(f"warning [{w['code']}] {src.name}: {w['message']}", fg=typer.colors.YELLOW, err=True)
    return doc


def _print_conversion(src: Path, doc: dict[str, Any], voice: str) -> None:
    m = doc["metrics"] or {}
    moved = doc["pitch_plan"].get("moved_share")
    report_s = doc["timings"].get("metrics")
    typer.echo(f"{src.name} -> {doc['output']}  (voice {voice!r}, {doc['engine']}, preset {doc['preset']})")
    typer.echo(
        f"  pitch      shift {doc['pitch_shift_semitones']:+.2f} semitones"
        + (" (auto key)" if doc["options"]["auto_key"] else "")
        + (f", {moved * 100:.0f} % of voiced frames moved by octaves" if moved else "")
    )
    typer.echo(f"  tracks     separation {doc['separation']}, F0 by {doc['f0_method']}")
    typer.echo(
        f"  speed      {doc['audio_seconds']:.1f} s of audio in {doc['processing_seconds']:.1f} s "
        f"(RTF {doc['rtf']:.3f})" + (f"; report {report_s:.1f} s" if report_s is not None else "")
    )
    if m:
        p, d = m["pitch"], m["dnsmos"]

        def f(v: float | None, spec: str) -> str:
            return "n/a" if v is None else format(v, spec)

        typer.echo(
            f"  pitch acc  median {f(p['median_abs_cents'], '.1f')} cents off the plan, "
            f"RMSE {f(p['rmse_cents'], '.0f')} cents, correlation {f(p['correlation'], '.3f')}"
        )
        typer.echo(
            f"  similarity {f(m['similarity_to_target'], '.3f')} to the profile "
            f"(source {f(m['similarity_source_to_target'], '.3f')}, "
            f"gain {f(m['similarity_gain'], '+.3f')})"
        )
        typer.echo(
            f"  DNSMOS     SIG {f(d['sig'], '.2f')}  BAK {f(d['bak'], '.2f')}  OVRL {f(d['ovrl'], '.2f')}"
        )
    for w in doc["warnings"]:
        typer.secho(f"  warning    [{w['code']}] {w['message']}", fg=typer.colors.YELLOW)
    if doc["report"]:
        typer.echo(f"  report     {doc['report']}")


def _print_batch(docs: list[dict[str, Any]]) -> None:
    rows = []
    for d in docs:
        name = Path(d["input"]).name
        if "error" in d:
            rows.append((name, "FAILED", d["error"]["code"], "", "", ""))
            continue
        m = d["metrics"] or {}
        ovrl = (m.get("dnsmos") or {}).get("ovrl")
        gain = m.get("similarity_gain")
        rows.append(
            (
                name,
                Path(d["output"]).name,
                f"{d['pitch_shift_semitones']:+.1f}",
                f"{d['rtf']:.3f}",
                "" if gain is None else f"{gain:+.3f}",
                "" if ovrl is None else f"{ovrl:.2f}" + (" !" if d["warnings"] else ""),
            )
        )
    table(("INPUT", "OUTPUT", "SHIFT", "RTF", "SIM GAIN", "OVRL"), rows)
    failed = sum("error" in d for d in docs)
    typer.echo(f"{len(docs) - failed} converted, {failed} failed.")


def _expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given, folders expanded to their audio files (sorted); a missing path is an error."""
    from autovoice.errors import NotFoundError

    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise NotFoundError(
                    "no_audio_files", f"No audio files in the folder '{p}'.", {"folder": str(p)}
                )
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise NotFoundError("file_not_found", f"No such file: '{p}'.", {"path": str(p)})
    return files


def _usage(message: str) -> AutoVoiceError:
    from autovoice.errors import ParameterError

    return ParameterError("invalid_usage", message)


# -- speech --------------------------------------------------------------------------------------
@app.command("tts")
def tts_cmd(
    text: Annotated[str, typer.Argument(help="The text to speak; '-' reads it from standard input.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output file (.wav/.flac/.ogg/.mp3).")
    ] = Path("speech.wav"),
    voice: Annotated[
        str | None, typer.Option("--voice", help="Built-in or cached Piper voice (default: joe).")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Speak in this voice profile's voice.")
    ] = None,
    speed: Annotated[float, typer.Option("--speed", help="0.5 (slower) .. 2.0 (faster).")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Speak text in a built-in voice or in a profile's voice."""
    import time

    from autovoice import tts
    from autovoice.audio import save
    from autovoice.profiles import ProfileStore

    if text == "-":
        text = sys.stdin.read()
    target = ProfileStore().get(profile) if profile else None
    t0 = time.perf_counter()
    with progress_bar(not as_json and target is not None) as progress:
        y, sr = tts.synthesize(text, voice=voice, profile=target, speed=speed, progress=progress)
    elapsed = time.perf_counter() - t0
    save(output, y, sr=sr)
    seconds = len(y) / sr
    doc = {
        "output": str(output),
        "voice": voice or "joe",
        "profile": {"id": target.id, "name": target.name} if target else None,
        "sample_rate": sr,
        "characters": len(text),
        "audio_seconds": round(seconds, 3),
        "processing_seconds": round(elapsed, 3),
        "rtf": round(elapsed / seconds, 4),
    }
    emit(
        doc,
        as_json,
        lambda: typer.echo(f"{output}: {seconds:.1f} s of speech in {elapsed:.2f} s (RTF {doc['rtf']:.3f})"),
    )


# -- choices ------------------------------------------------------------------------------------
@app.command("engines")
def engines_cmd(as_json: JsonOpt = False) -> None:
    """List the conversion engines, F0 methods and separation backends, with what each is for."""
    from autovoice.pipeline.catalog import catalog

    doc = catalog()

    def human() -> None:
        for key, title in (
            ("engines", "Engines"),
            ("f0_methods", "F0 methods"),
            ("separation", "Separation"),
        ):
            typer.secho(title, bold=True)
            for c in doc[key]:
                typer.echo(f"  {c['name']:<12} {c['description']}")

    emit(doc, as_json, human)


# -- models --------------------------------------------------------------------------------------
@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Registered weights (bundled in packages or downloadable), where they are, and whether present."""
    from autovoice.models.weights import REGISTRY, weights_path, weights_present

    rows: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "version": spec.version,
            "license": spec.license,
            "size_bytes": spec.size_bytes,
            "bundled": spec.bundled,
            "path": str(weights_path(spec.name)),
            "present": weights_present(spec.name),
        }
        for spec in REGISTRY.values()
    ]

    def human() -> None:
        table(
            ("NAME", "STATE", "SIZE", "LICENCE", "SOURCE", "PATH"),
            [
                (
                    r["name"],
                    "present" if r["present"] else "missing",
                    f"{(r['size_bytes'] or 0) / 2**20:.1f} MiB",
                    r["license"],
                    "bundled" if r["bundled"] else "download",
                    r["path"],
                )
                for r in rows
            ],
        )

    emit({"models": rows}, as_json, human)


@models_app.command("download")
def models_download(
    name: Annotated[str, typer.Argument(help="Weights name (see `autovoice models list`).")],
    as_json: JsonOpt = False,
) -> None:
    """Download weights into the cache and verify their hash (needs network access)."""
    from autovoice.models.weights import download_weights

    with progress_bar(not as_json) as progress:
        path = download_weights(name, progress=progress)
    emit({"name": name, "path": str(path)}, as_json, lambda: typer.echo(f"{name}: {path}"))


@models_app.command("add")
def models_add(
    name: Annotated[str, typer.Argument(help="hubert_base, contentvec or rmvpe.")],
    path: Annotated[Path, typer.Argument(help="A file (.pt) or a Hugging Face folder you have.")],
    as_json: JsonOpt = False,
) -> None:
    """Add a content encoder (or RMVPE) from your own file or folder: checked, then copied into the cache."""
    from autovoice.engines.trained import add_user_weights

    with progress_bar(not as_json) as progress:
        progress(0.0, f"checking {name}")
        stored = add_user_weights(name, path)
    emit({"name": name, "path": str(stored)}, as_json, lambda: typer.echo(f"{name}: {stored}"))


# -- entry point ---------------------------------------------------------------------------------
def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code: 0 ok, 2 caller error, 1 internal error,
    130 interrupted (Ctrl-C; nothing half-written stays behind)."""
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in args
    if any(a in _VERBOSE_FLAGS for a in args):  # -v works after the subcommand too
        args = ["--verbose", *(a for a in args if a not in _VERBOSE_FLAGS)]
    command = readable_help(typer.main.get_command(app))
    try:
        rc = command.main(args=args, prog_name="autovoice", standalone_mode=False)
    except typer.Exit as exc:
        rc = int(exc.exit_code)
    except typer.Abort:
        rc = 130
    except typer.TyperException as exc:  # usage errors (Typer's click): unknown option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc}", err=True)
        return 2
    except AutoVoiceError as exc:
        flag = _FLAGS.get(str(exc.details.get("field"))) or _CODE_FLAGS.get(exc.code)
        hint = f"{flag} (see `{command_path(command, args)} --help`)" if flag else None
        report_error(exc, as_json, hint=hint)
        return 2 if exc.caller_error else 1
    except KeyboardInterrupt:
        rc = 130
    except Exception as exc:  # the last line of defence: exit 1 with a readable message
        log.debug("internal error", exc_info=True)
        from autovoice.errors import InternalError

        report_error(InternalError("internal_error", f"{type(exc).__name__}: {exc}"), as_json)
        typer.echo("This is a bug in AutoVoice; rerun with -v for the traceback.", err=True)
        return 1
    if rc == 130:
        typer.echo("Interrupted.", err=True)
    return rc if isinstance(rc, int) else 0


def main() -> None:
    """Console entry point (``autovoice``)."""
    sys.exit(run())


if __name__ == "__main__":  # pragma: no cover
    main()
