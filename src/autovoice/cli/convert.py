"""``autovoice convert`` (songs or vocals into a profile's voice, one file or a batch), ``analyze`` (F0,
range, loudness of a recording) and ``engines`` (what a conversion can choose from)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from autovoice.cli.tools import JsonOpt, device, emit, progress_bar, report_error, table, usage_error
from autovoice.errors import AutoVoiceError

if TYPE_CHECKING:
    from autovoice.profiles import VoiceProfile


def analyze_cmd(
    file: Annotated[Path, typer.Argument(help="Audio file (wav, flac, ogg, mp3, m4a, opus).")],
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the F0 contour and range as a PNG.")
    ] = None,
    f0_method: Annotated[str, typer.Option("--f0-method", help="Pitch tracker: {f0_methods}.")] = "fcpe",
    as_json: JsonOpt = False,
) -> None:
    """Analyse a recording: F0 contour, vocal range, loudness."""
    from autovoice.analysis.report import analyze_file

    with progress_bar(not as_json) as progress:
        result = analyze_file(file, f0_method=f0_method, device=device(), plot=plot, progress=progress)
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


#: Audio file suffixes a folder given to ``convert`` is searched for.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".webm", ".aac", ".aif", ".aiff")


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
            help="Conversion engine: {engines}; default: the kind of the profile's "
            "trained model, else world.",
        ),
    ] = None,
    f0_method: Annotated[
        str | None,
        typer.Option("--f0-method", help="Pitch tracker: {f0_methods}; default: the preset's."),
    ] = None,
    preset: Annotated[str, typer.Option("--preset", help="Speed against quality: {presets}.")] = "balanced",
    separation: Annotated[
        str,
        typer.Option(
            "--separation",
            help="Vocal separation: {separation} (auto: skipped for a voice alone, speech or a cappella; "
            "else Demucs if present, else Spleeter).",
        ),
    ] = "auto",
    content: Annotated[
        str,
        typer.Option(
            "--content",
            help="What the input is, for --auto-key: {contents}. auto decides from how steady its pitch "
            "is; speech moves it exactly onto the voice's speaking median; song onto its singing range in "
            "whole semitones (whole octaves with an accompaniment, to stay in key).",
        ),
    ] = "auto",
    metrics: Annotated[
        str, typer.Option("--metrics", help="Quality report: {metrics_levels} (fast: bounded windows).")
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
        content=content,
        metrics=metrics,
        engine_options=engine_options,
    )
    files = _expand_inputs(inputs)
    batch = len(files) > 1 or any(p.is_dir() for p in inputs)
    out_path = Path(output) if output is not None else None
    # "-o converted/" names a folder even when it does not exist yet (the README's own form).
    folder_named = output is not None and output.endswith(("/", os.sep))
    if batch and (accompaniment is not None or report is not None):
        raise usage_error("--accompaniment and --report take one input; convert the files one at a time.")
    if batch and out_path is None:
        raise usage_error("Several inputs need an output folder: -o OUTDIR/.")
    if batch and out_path is not None and out_path.suffix and not out_path.is_dir() and not folder_named:
        raise usage_error(f"'{output}' looks like a file; several inputs need an output folder (-o OUTDIR/).")
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
        raise usage_error(f"'{folder}' is a file, not a folder; choose another output folder.")
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
    device_name = device()
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
                    device=device_name,
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
    sep, content = doc.get("separation_decision"), doc["content"]
    if sep is not None and sep["decided_by"] == "auto":
        typer.echo(f"  separation {sep['reason']}")
    typer.echo(f"  content    {content['used']} ({content['decided_by']}: {content['reason']})")
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
        typer.echo(f"  identity   {identity_line(m.get('identity'))}")
        typer.echo(
            f"  DNSMOS     SIG {f(d['sig'], '.2f')}  BAK {f(d['bak'], '.2f')}  OVRL {f(d['ovrl'], '.2f')}"
        )
    for w in doc["warnings"]:
        typer.secho(f"  warning    [{w['code']}] {w['message']}", fg=typer.colors.YELLOW)
    if doc["report"]:
        typer.echo(f"  report     {doc['report']}")


def identity_line(identity: dict[str, Any] | None) -> str:
    """The report's identity verdict in words, naming the judge and the voice's own band."""
    if not identity or identity.get("verdict") == "unmeasured" or identity.get("band") is None:
        return "not judged: the profile has no identity band (rebuild it from 18 s or more of recordings)"
    band, sim = identity["band"], identity["similarity"]
    where = {
        "inside": "inside the voice's own band",
        "near": "just below the voice's own band",
        "below": "below the voice's own band: the judge does not hear this voice",
    }[identity["verdict"]]
    return (
        f"{where} ({identity['judge']}: {sim:.3f}; its own recordings {band['low']:.3f}-{band['high']:.3f})"
    )


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


def engines_cmd(as_json: JsonOpt = False) -> None:
    """List the conversion engines, F0 methods, separation backends and content choices, with what each
    is for."""
    from autovoice.pipeline.catalog import catalog

    doc = catalog()

    def human() -> None:
        for key, title in (
            ("engines", "Engines"),
            ("f0_methods", "F0 methods"),
            ("separation", "Separation"),
            ("contents", "Content (for auto key)"),
        ):
            typer.secho(title, bold=True)
            for c in doc[key]:
                typer.echo(f"  {c['name']:<12} {c['description']}")

    emit(doc, as_json, human)
