"""``autovoice live``: the real-time voice changer in a terminal.

With sound devices (PortAudio through ``sounddevice``, imported only here, only when a device is
used) it converts the microphone into a profile's voice on the speakers; with ``--input FILE`` it
streams a file through the same live path, block by block on a simulated clock that keeps the real
conversion times, so the output file holds exactly what a listener would have heard (the constant
latency removed, dropped blocks silent).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from autovoice.cli.tools import JsonOpt, device, emit, table
from autovoice.errors import ModelUnavailableError, ParameterError
from autovoice.models.devices import one_compute_thread

if TYPE_CHECKING:
    import numpy as np

    from autovoice.pipeline.live import LiveConverter

log = logging.getLogger("autovoice")


def live_cmd(
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Target voice profile (name or id).")
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="Engine, one that streams: {streaming_engines}.")
    ] = None,
    pitch: Annotated[
        float | None, typer.Option("--pitch", help="Transpose by N semitones (-24..24).")
    ] = None,
    auto_key: Annotated[
        bool,
        typer.Option(
            "--auto-key", help="Move your median pitch onto the profile's (fixed after ~1 s of voice)."
        ),
    ] = False,
    block_ms: Annotated[
        str | None,
        typer.Option(
            "--block-ms",
            help="Block length in ms (a multiple of 10, 20..500), or auto: the smallest block this machine "
            "converts in at most half its time, measured at start (default).",
        ),
    ] = None,
    f0_method: Annotated[
        str | None,
        typer.Option(
            "--f0-method", help="Pitch tracker per block: {live_f0_methods} (default: {live_f0_default})."
        ),
    ] = None,
    preset: Annotated[str | None, typer.Option("--preset", help="Speed against quality: {presets}.")] = None,
    sample_rate: Annotated[
        int, typer.Option("--sample-rate", help="Stream rate in Hz: {sample_rates}.")
    ] = 16_000,
    input_file: Annotated[
        Path | None, typer.Option("--input", "-i", help="Stream this file instead of the microphone.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="With --input: the output file (default: next to it)."),
    ] = None,
    no_deadlines: Annotated[
        bool,
        typer.Option("--no-deadlines", help="With --input: convert every block even when late (rendering)."),
    ] = False,
    list_devices: Annotated[
        bool, typer.Option("--list-devices", help="List sound devices and exit.")
    ] = False,
    input_device: Annotated[
        str | None, typer.Option("--input-device", help="Microphone (index or name; default: the system's).")
    ] = None,
    output_device: Annotated[
        str | None, typer.Option("--output-device", help="Speakers (index or name; default: the system's).")
    ] = None,
    seconds: Annotated[
        float | None, typer.Option("--seconds", help="With sound devices: stop after this long.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Convert your voice live: microphone in, a profile's voice out, at a constant latency.

    Latency = block + lookahead + crossfade (+ SOLA search), printed at the start; a block that is
    not converted in time is dropped (silence) and counted, never queued. The block is chosen by
    measuring this machine unless --block-ms N is given; when no block can keep up, live_too_slow
    (exit 2) says so before any audio. Ctrl-C stops.
    """
    if list_devices:
        devices = _list_devices()
        emit({"devices": devices}, as_json, lambda: _print_devices(devices))
        return
    if profile is None:
        raise ParameterError("invalid_usage", "Name the target voice: --profile NAME.", {"field": "profile"})
    if output is not None and input_file is None:
        raise ParameterError("invalid_usage", "-o/--output needs --input FILE (a file to stream).")
    from autovoice.pipeline.live import LiveOptions, check_sample_rate, warm_converter
    from autovoice.profiles import ProfileStore

    check_sample_rate(sample_rate)
    one_compute_thread()
    options = LiveOptions.parse(
        engine=engine,
        pitch_shift=pitch,
        auto_key=auto_key or None,
        block_ms=block_ms,
        f0_method=f0_method,
        preset=preset,
    )
    target = ProfileStore().get(profile)
    if input_file is not None:
        _stream_file(
            input_file, output, target, options, sample_rate, no_deadlines=no_deadlines, as_json=as_json
        )
        return
    sd = _sounddevice()
    converter = warm_converter(target, sr=sample_rate, options=options, device=device())
    if not as_json:
        _echo_block(converter, err=True)
    _run_devices(sd, converter, input_device, output_device, seconds=seconds, as_json=as_json)


def _echo_block(converter: LiveConverter, *, err: bool) -> None:
    """The block in use and, when it was measured, why it was chosen."""
    lat = converter.latency.to_dict()
    choice = converter.block_choice
    if choice is None:
        typer.echo(f"  block      {lat['block_ms']:g} ms (as asked)", err=err)
        return
    typer.echo(
        f"  block      {lat['block_ms']:g} ms, measured on this machine in {choice.seconds:.1f} s: "
        f"{choice.reason}",
        err=err,
    )


def _stream_file(
    src: Path,
    output: Path | None,
    target: Any,
    options: Any,
    sr: int,
    *,
    no_deadlines: bool,
    as_json: bool,
) -> None:
    from autovoice.audio import load, resample, save
    from autovoice.pipeline import check_output
    from autovoice.pipeline.live import SimulatedClock, UnhurriedClock, stream_array, warm_converter

    out = output or src.with_name(f"{src.stem}.{target.name}.live.wav")
    check_output(out)
    y, file_sr = load(src, mono=True)
    x = resample(y, orig_sr=file_sr, target_sr=sr)
    converter = warm_converter(target, sr=sr, options=options, device=device())
    t0 = time.perf_counter()
    result, stats = stream_array(x, converter, clock=UnhurriedClock() if no_deadlines else SimulatedClock())
    wall = time.perf_counter() - t0
    save(out, result, sr=sr)
    doc = {
        "input": str(src),
        "output": str(out),
        "profile": {"id": target.id, "name": target.name},
        "options": converter.options.model_dump(mode="json"),
        "latency": converter.latency.to_dict(),
        "block_choice": None if converter.block_choice is None else converter.block_choice.to_dict(),
        "stats": stats.to_dict(),
        "audio_seconds": round(len(x) / sr, 3),
        "wall_seconds": round(wall, 3),
        "deadlines": not no_deadlines,
    }
    emit(doc, as_json, lambda: _print_summary(doc, converter))


def _print_summary(doc: dict[str, Any], converter: LiveConverter) -> None:
    s, lat = doc["stats"], doc["latency"]
    typer.echo(f"{doc['input']} -> {doc['output']} (profile {doc['profile']['name']!r})")
    _echo_block(converter, err=False)
    typer.echo(
        f"  latency    {lat['total_ms']:g} ms = block {lat['block_ms']:g} + lookahead {lat['lookahead_ms']:g}"
        f" + crossfade {lat['crossfade_ms']:g} + SOLA search {lat['sola_search_ms']:g}"
    )
    typer.echo(
        f"  blocks     {s['blocks']} ({s['converted']} converted, {s['dropped']} dropped); per block "
        f"p50 {s['processing_ms_p50']} ms, p99 {s['processing_ms_p99']} ms"
    )
    if s["pitch_shift"] is not None:
        typer.echo(f"  pitch      {s['pitch_shift']:+.2f} semitones")


# -- sound devices -------------------------------------------------------------------------------
def _sounddevice() -> Any:
    """The ``sounddevice`` module, or ``audio_devices_unavailable`` when PortAudio is missing."""
    try:
        import sounddevice
    except OSError as exc:  # the wheel is there but the PortAudio library is not (Linux)
        raise ModelUnavailableError(
            "audio_devices_unavailable",
            "Sound devices need the PortAudio library, which is not installed (on Debian/Ubuntu: "
            "apt install libportaudio2). Streaming a file works without it: --input FILE -o OUT.",
            {"reason": str(exc)[:200]},
        ) from None
    return sounddevice


def _list_devices() -> list[dict[str, Any]]:
    sd = _sounddevice()
    default_in, default_out = (int(d) if d is not None else -1 for d in sd.default.device)
    rows = []
    for i, d in enumerate(sd.query_devices()):
        rows.append(
            {
                "index": i,
                "name": str(d["name"]),
                "inputs": int(d["max_input_channels"]),
                "outputs": int(d["max_output_channels"]),
                "default_sample_rate": float(d["default_samplerate"]),
                "default_input": i == default_in,
                "default_output": i == default_out,
            }
        )
    return rows


def _print_devices(devices: list[dict[str, Any]]) -> None:
    if not devices:
        typer.echo("No sound devices found.")
        return
    table(
        ("INDEX", "NAME", "IN", "OUT", "RATE", "DEFAULT"),
        [
            (
                d["index"],
                d["name"],
                d["inputs"],
                d["outputs"],
                f"{d['default_sample_rate']:g}",
                " ".join(k for k, v in (("input", d["default_input"]), ("output", d["default_output"])) if v),
            )
            for d in devices
        ],
    )


def _device_ref(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.strip().isdigit() else value


def _run_devices(
    sd: Any,
    converter: LiveConverter,
    input_device: str | None,
    output_device: str | None,
    *,
    seconds: float | None,
    as_json: bool,
) -> None:
    """Full duplex: the callback converts each block in place. A callback that finds the stream behind
    (PortAudio flags an overflow/underflow, or the previous block overran its time) skips conversion for
    that block (silence, counted as dropped) so the delay never grows."""
    import numpy as np

    block, sr = converter.block_size, converter.sr
    block_s = block / sr
    behind = {"overran": False}
    stop = threading.Event()

    def callback(indata: np.ndarray, outdata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        x = np.asarray(indata[:, 0], dtype=np.float32)
        if status.input_overflow or status.output_underflow or behind["overran"]:
            y = converter.skip(x)
            behind["overran"] = False
        else:
            t0 = time.perf_counter()
            y = converter.process(x)
            if time.perf_counter() - t0 > block_s:
                y = converter.drop_last()
                behind["overran"] = True
        outdata[:, 0] = y

    stream = sd.Stream(
        samplerate=sr,
        blocksize=block,
        dtype="float32",
        channels=1,
        latency="low",
        device=(_device_ref(input_device), _device_ref(output_device)),
        callback=callback,
    )
    lat = converter.latency.to_dict()
    if not as_json:
        typer.echo(
            f"Live: {lat['total_ms']:g} ms algorithmic latency (+ the devices' own); Ctrl-C stops.", err=True
        )
    started = time.monotonic()
    try:
        with stream:
            while not stop.wait(1.0):
                s = converter.stats()
                if not as_json:
                    typer.echo(
                        f"\rblocks {s.blocks}  dropped {s.dropped}  p99 {s.processing_ms_p99 or 0:.1f} ms"
                        f" of {s.block_ms:g}  device latency {1000 * sum(stream.latency):.0f} ms",
                        err=True,
                        nl=False,
                    )
                if seconds is not None and time.monotonic() - started >= seconds:
                    break
    except KeyboardInterrupt:
        pass
    stats = converter.stats().to_dict()
    choice = None if converter.block_choice is None else converter.block_choice.to_dict()
    emit(
        {"latency": lat, "block_choice": choice, "stats": stats},
        as_json,
        lambda: typer.echo(f"\nStopped: {stats['blocks']} blocks, {stats['dropped']} dropped.", err=True),
    )
