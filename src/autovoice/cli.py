"""The ``autovoice`` command line.

Heavy modules (numpy, torch, the models) are imported inside the commands, so ``autovoice --help``
starts fast. Exit codes: 0 success, 2 bad input or usage, 1 internal failure. With ``--json`` a command
prints exactly one JSON document on stdout (its result, or ``{"error": {...}}``) and nothing else there;
progress and logs go to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from autovoice import __version__
from autovoice.errors import AutoVoiceError

if TYPE_CHECKING:
    from autovoice.engines.base import Preset
    from autovoice.profiles import VoiceProfile
    from autovoice.separation import Separation

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
models_app = typer.Typer(help="List and download model weights that are not bundled.", no_args_is_help=True)
app.add_typer(models_app, name="models")

# The service's commands import nothing heavy at module level, so `autovoice --help` stays fast.
from autovoice.service.cli import apikey_app, serve, worker  # noqa: E402

app.add_typer(apikey_app, name="apikey")
app.command("serve")(serve)
app.command("worker")(worker)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"autovoice {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details to stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    from autovoice.config import get_settings

    level = "DEBUG" if verbose else get_settings().log_level
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO) if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# -- output helpers ------------------------------------------------------------------------------
def _emit(doc: dict[str, Any], as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    else:
        human()


@contextmanager
def _progress(enabled: bool = True) -> Iterator[Callable[[float, str], None]]:
    """A rich progress bar on stderr, fed by ``progress(fraction, stage)``."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda fraction, stage: log.debug("progress %.2f %s", fraction, stage)
        return
    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=1.0)

        def report(fraction: float, stage: str) -> None:
            bar.update(task, completed=fraction, description=stage)

        yield report


def _device() -> str:
    from autovoice.config import get_settings
    from autovoice.models.devices import resolve_device

    return resolve_device(get_settings().device)


def _print_profile(p: VoiceProfile) -> None:
    r, q = p.vocal_range, p.quality
    typer.echo(f"Profile {p.name!r}  id={p.id}  revision={p.revision}  created={p.created_at}")
    typer.echo(
        f"  range      {r.lowest_note}–{r.highest_note} ({r.lowest_hz:.0f}–{r.highest_hz:.0f} Hz, "
        f"{r.span_semitones:.1f} semitones), median {r.to_dict()['median_note']} ({r.median_hz:.0f} Hz)"
    )
    t = r.to_dict()["tessitura_notes"]
    typer.echo(
        f"  tessitura  {t[0]}–{t[1]} ({r.tessitura_low_hz:.0f}–{r.tessitura_high_hz:.0f} Hz); "
        f"rests on {r.voiced_seconds:.1f} s voiced ({r.confidence} confidence)"
    )
    typer.echo(
        f"  samples    {q.n_samples} file(s), {q.duration_s:.1f} s, {q.voiced_s:.1f} s voiced, "
        f"SNR ≈ {q.snr_db:.0f} dB, silence {q.silence_ratio * 100:.0f}%, "
        f"clipped {q.clipped_fraction * 100:.3f}%"
    )
    for w in q.warnings:
        typer.secho(f"  warning    {w}", fg=typer.colors.YELLOW)


# -- profile commands ----------------------------------------------------------------------------
@profile_app.command("create")
def profile_create(
    name: Annotated[str, typer.Argument(help="Unique profile name.")],
    samples: Annotated[list[Path], typer.Argument(help="Recordings of the voice (10 s to a few minutes).")],
    replace: Annotated[bool, typer.Option("--replace", help="Rebuild an existing profile.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build a voice profile from recordings: embedding, vocal range, quality report."""
    from autovoice.profiles import ProfileStore, build_profile, validate_profile_name

    store = ProfileStore()
    name = validate_profile_name(name)
    if store.exists(name) and not replace:  # checked before the slow analysis, and again by save()
        from autovoice.errors import ConflictError

        raise ConflictError(
            "profile_exists",
            f"A profile named '{name}' already exists. Delete it first or pass --replace.",
            {"profile": name},
        )
    with _progress(not as_json) as progress:
        profile = build_profile(samples, name=name, device=_device(), progress=progress)
    store.save(profile, replace=replace)
    _emit(profile.summary(), as_json, lambda: _print_profile(profile))


@profile_app.command("list")
def profile_list(as_json: JsonOpt = False) -> None:
    """List voice profiles."""
    from autovoice.profiles import ProfileStore

    profiles = ProfileStore().list()

    def human() -> None:
        if not profiles:
            typer.echo("No profiles yet. Create one with `autovoice profile create NAME SAMPLE...`.")
        for p in profiles:
            r = p.vocal_range
            typer.echo(
                f"{p.name:<24} {p.id}  {r.lowest_note}–{r.highest_note}  "
                f"{p.quality.voiced_s:5.1f} s voiced  rev {p.revision}"
            )

    _emit({"profiles": [p.summary() for p in profiles]}, as_json, human)


@profile_app.command("show")
def profile_show(
    name: Annotated[str, typer.Argument(help="Profile name or id.")], as_json: JsonOpt = False
) -> None:
    """Show one profile: range, tessitura, sample quality."""
    from autovoice.profiles import ProfileStore

    profile = ProfileStore().get(name)
    _emit(profile.summary(), as_json, lambda: _print_profile(profile))


@profile_app.command("delete")
def profile_delete(
    name: Annotated[str, typer.Argument(help="Profile name or id.")], as_json: JsonOpt = False
) -> None:
    """Delete a profile and its files."""
    from autovoice.profiles import ProfileStore

    profile = ProfileStore().delete(name)
    _emit(
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
    f0_method: Annotated[str, typer.Option("--f0-method", help="fcpe (default) or world.")] = "fcpe",
    as_json: JsonOpt = False,
) -> None:
    """Analyse a recording: F0 contour, vocal range, loudness."""
    from autovoice.analysis.report import analyze_file

    with _progress(not as_json) as progress:
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

    _emit(doc, as_json, human)


# -- conversion ----------------------------------------------------------------------------------
@app.command("convert")
def convert_cmd(
    input: Annotated[Path, typer.Argument(help="Song or vocal (wav, flac, ogg, mp3, m4a, opus).")],
    profile: Annotated[str, typer.Option("--profile", "-p", help="Target voice profile (name or id).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Output file (.wav/.flac/.ogg/.mp3).")
    ] = None,
    pitch: Annotated[
        float | None, typer.Option("--pitch", help="Transpose by N semitones (-24..24).")
    ] = None,
    auto_key: Annotated[
        bool, typer.Option("--auto-key", help="Move the melody into the profile's range.")
    ] = False,
    preset: Annotated[str, typer.Option("--preset", help="fast, balanced or quality.")] = "balanced",
    separation: Annotated[
        str, typer.Option("--separation", help="auto, demucs, or none (the input is a vocal).")
    ] = "auto",
    accompaniment: Annotated[
        Path | None, typer.Option("--accompaniment", help="Accompaniment to mix back in.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Quality report JSON (default: next to the output).")
    ] = None,
    stems: Annotated[
        Path | None, typer.Option("--stems", help="Also write the converted vocals and accompaniment here.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Convert a song or vocal into a profile's voice, keeping melody and words, and measure it."""
    from autovoice.pipeline import check_options, convert_file
    from autovoice.profiles import ProfileStore

    check_options(pitch_shift=pitch, auto_key=auto_key, preset=preset, separation=separation)
    target = ProfileStore().get(profile)
    with _progress(not as_json) as progress:
        result = convert_file(
            input,
            profile=target,
            output=output,
            report_path=report,
            accompaniment_path=accompaniment,
            pitch_shift=pitch,
            auto_key=auto_key,
            preset=cast("Preset", preset),
            separation=cast("Separation", separation),
            stems_dir=stems,
            device=_device(),
            progress=progress,
        )
    doc = result.to_dict()
    doc["input"] = str(input)
    doc["profile"] = {"id": target.id, "name": target.name}

    def human() -> None:
        m = doc["metrics"] or {}
        typer.echo(f"{input.name} -> {doc['output']}  (voice {target.name!r}, preset {doc['preset']})")
        typer.echo(
            f"  pitch      shift {doc['pitch_shift_semitones']:+.2f} semitones"
            + (" (auto key)" if auto_key else "")
        )
        typer.echo(
            f"  speed      {doc['audio_seconds']:.1f} s of audio in {doc['processing_seconds']:.1f} s "
            f"(RTF {doc['rtf']:.3f})"
        )
        if m:
            p, d = m["pitch"], m["dnsmos"]

            def f(v: float | None, spec: str) -> str:
                return "n/a" if v is None else format(v, spec)

            typer.echo(
                f"  pitch acc  median {f(p['median_abs_cents'], '.1f')} cents off the plan, "
                f"RMSE {f(p['rmse_cents'], '.0f')} cents / {f(p['rmse_hz'], '.1f')} Hz, "
                f"correlation {f(p['correlation'], '.3f')}"
            )
            typer.echo(
                f"  similarity {f(m['similarity_to_target'], '.3f')} to the profile "
                f"(source {f(m['similarity_source_to_target'], '.3f')}, "
                f"gain {f(m['similarity_gain'], '+.3f')})"
            )
            typer.echo(
                f"  DNSMOS     SIG {f(d['sig'], '.2f')}  BAK {f(d['bak'], '.2f')}  OVRL {f(d['ovrl'], '.2f')}"
            )
        typer.echo(f"  report     {doc['report']}")

    _emit(doc, as_json, human)


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
    with _progress(not as_json and target is not None) as progress:
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
    _emit(
        doc,
        as_json,
        lambda: typer.echo(f"{output}: {seconds:.1f} s of speech in {elapsed:.2f} s (RTF {doc['rtf']:.3f})"),
    )


# -- models --------------------------------------------------------------------------------------
@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Downloadable weights, where they go, and whether they are present."""
    from autovoice.models.weights import REGISTRY, weights_path, weights_present

    rows: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "version": spec.version,
            "license": spec.license,
            "size_bytes": spec.size_bytes,
            "path": str(weights_path(spec.name)),
            "present": weights_present(spec.name),
        }
        for spec in REGISTRY.values()
    ]

    def human() -> None:
        for r in rows:
            state = "present" if r["present"] else "missing"
            size = f"{r['size_bytes'] / 2**20:6.1f} MiB"
            typer.echo(f"{r['name']:<12} {state:<8} {size}  {r['license']:<8} {r['path']}")

    _emit({"models": rows}, as_json, human)


@models_app.command("download")
def models_download(
    name: Annotated[str, typer.Argument(help="Weights name (see `autovoice models list`).")],
    as_json: JsonOpt = False,
) -> None:
    """Download weights into the cache and verify their hash (needs network access)."""
    from autovoice.models.weights import download_weights

    with _progress(not as_json) as progress:
        path = download_weights(name, progress=progress)
    _emit({"name": name, "path": str(path)}, as_json, lambda: typer.echo(f"{name}: {path}"))


# -- entry point ---------------------------------------------------------------------------------
def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code: 0 ok, 2 caller error, 1 internal error."""
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in args
    try:
        app(args=args, prog_name="autovoice", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        return 130
    except typer.TyperException as exc:  # usage errors (Typer's click): unknown option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc}", err=True)
        return 2
    except AutoVoiceError as exc:
        _report_error(exc, as_json)
        return 2 if exc.caller_error else 1
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # the last line of defence: exit 1 with a readable message
        log.debug("internal error", exc_info=True)
        from autovoice.errors import InternalError

        _report_error(InternalError("internal_error", f"{type(exc).__name__}: {exc}"), as_json)
        typer.echo("This is a bug in AutoVoice; rerun with -v for the traceback.", err=True)
        return 1
    return 0


def main() -> None:
    """Console entry point (``autovoice``)."""
    sys.exit(run())


def _report_error(exc: AutoVoiceError, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"error": exc.to_dict()}, default=str) + "\n")
    typer.secho(f"error [{exc.code}]: {exc.message}", fg=typer.colors.RED, err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
