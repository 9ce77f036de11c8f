"""``autovoice tts``: speak text in a built-in voice or in a profile's voice."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from autovoice.cli.tools import JsonOpt, emit, progress_bar


def tts_cmd(
    text: Annotated[str, typer.Argument(help="The text to speak; '-' reads it from standard input.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output file (.wav/.flac/.ogg/.mp3).")
    ] = Path("speech.wav"),
    voice: Annotated[
        str | None,
        typer.Option("--voice", help="Built-in or cached Piper voice: {voices} (default: {default_voice})."),
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
