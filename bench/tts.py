"""Text-to-speech speed: AutoVoice's path against Piper's own Python API on the same voice (Piper's
``PiperVoice.load`` with its default ONNX Runtime session, as a Piper user runs it; AutoVoice's own
sessions: every core for a request alone, ``AUTOVOICE_TTS_THREADS`` per request when several overlap),
time to the first streamed chunk, the same in a profile's voice, and ``POST /api/v1/tts`` under load.

Writes ``bench/results/tts.json`` and ``tts.md``. Usage: ``python bench/tts.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from _common import REPO, write_results

HELLO = "Hello, world!"
LONG = (
    "The quick brown fox jumps over the lazy dog near the quiet river bank, while children play "
    "happily in the warm afternoon sun and birds sing in the tall trees."
)
THREE = "This is the first sentence. Here comes a second, longer sentence with more words in it. And a third."


def median_time(fn: Any, runs: int) -> tuple[float, float]:
    """Median wall time of ``fn()`` and the median audio seconds it returned."""
    times, durs = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        seconds = fn()
        times.append(time.perf_counter() - t0)
        durs.append(seconds)
    return statistics.median(times), statistics.median(durs)


def first_chunk(gen_factory: Any, runs: int) -> float:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        gen = gen_factory()
        next(iter(gen))
        out.append(time.perf_counter() - t0)
        for _ in gen:  # drain, so the next run starts clean
            pass
    return statistics.median(out)


async def post_load(base: str, *, clients: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        await client.post("/api/v1/tts", json={"text": HELLO})
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                r = await client.post("/api/v1/tts", json={"text": HELLO})
                latencies.append(time.perf_counter() - t0)
                errors += r.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    ms = sorted(v * 1000 for v in latencies)
    pct = lambda q: ms[min(len(ms) - 1, round(q / 100 * (len(ms) - 1)))]  # noqa: E731
    return {
        "clients": clients,
        "requests": len(ms),
        "errors": errors,
        "rps": len(ms) / elapsed,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    from piper import PiperVoice, SynthesisConfig

    from autovoice import tts
    from autovoice.pipeline.enroll import build_profile
    from autovoice.tts.piper_voice import PiperTtsVoice, builtin_voice_files
    from autovoice.tts.sessions import SessionPair

    voice = tts.load_voice()
    piper = PiperVoice.load(builtin_voice_files().model)  # Piper's own loading and session defaults
    sr = voice.sample_rate
    # Before issue 24: one thread for every request, alone or not.
    one_thread = PiperTtsVoice(
        PiperVoice(
            config=piper.config, session=SessionPair(builtin_voice_files().model, threads=1, wide_threads=1)
        ),
        name="joe, one thread",
    )

    def piper_direct(text: str) -> float:
        y = np.concatenate([c.audio_float_array for c in piper.synthesize(text, SynthesisConfig())])
        return len(y) / sr

    def ours(text: str, profile: Any = None) -> float:
        y, rate = tts.synthesize(text, voice=voice, profile=profile)
        return len(y) / rate

    def ours_one_thread(text: str) -> float:
        y, rate = tts.synthesize(text, voice=one_thread)
        return len(y) / rate

    for f in (piper_direct, ours, ours_one_thread):
        f(HELLO)
        f(LONG)
    res: dict[str, Any] = {}
    for label, text in (("hello", HELLO), ("30_words", LONG)):
        for name, fn in (("piper", piper_direct), ("autovoice", ours), ("one_thread", ours_one_thread)):
            t, d = median_time(lambda fn=fn, text=text: fn(text), args.runs)
            res[f"{label}_{name}_s"], res[f"{label}_{name}_rtf"] = t, t / d
        res[f"{label}_overhead_pct"] = 100 * (res[f"{label}_autovoice_s"] / res[f"{label}_piper_s"] - 1)
        res[f"{label}_one_thread_overhead_pct"] = 100 * (
            res[f"{label}_one_thread_s"] / res[f"{label}_piper_s"] - 1
        )
    res["first_chunk_piper_s"] = first_chunk(lambda: piper.synthesize(THREE), args.runs)
    res["first_chunk_autovoice_s"] = first_chunk(lambda: tts.stream(THREE, voice=voice), args.runs)

    samples = sorted((REPO / "assets" / "demo").glob("367-*.flac"))
    profile = build_profile(samples, name="tts-bench")
    ours(HELLO, profile)
    runs = max(3, args.runs // 3)
    t, d = median_time(lambda: ours(HELLO, profile), runs)
    res["hello_profile_s"] = t
    t, d = median_time(lambda: ours(LONG, profile), runs)
    res["30_words_profile_s"], res["30_words_profile_rtf"] = t, t / d
    res["first_chunk_profile_s"] = first_chunk(lambda: tts.stream(THREE, voice=voice, profile=profile), runs)

    from service import Server  # bench/service.py: the real server in a subprocess

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", workers=1, log=Path(tmp) / "server.log")
        try:
            res["api"] = asyncio.run(post_load(server.base, clients=10, seconds=20))
        finally:
            server.stop()

    api = res["api"]
    table = "\n".join(
        [
            "| measure | Piper's own API | AutoVoice | overhead |",
            "| --- | --- | --- | --- |",
            f'| "Hello, world!" latency | {res["hello_piper_s"] * 1000:.0f} ms | '
            f"{res['hello_autovoice_s'] * 1000:.0f} ms | {res['hello_overhead_pct']:+.1f}% |",
            f"| 30-word sentence RTF | {res['30_words_piper_rtf']:.3f} | {res['30_words_autovoice_rtf']:.3f} | "
            f"{res['30_words_overhead_pct']:+.1f}% |",
            f'| before: one thread per request, "Hello, world!" | {res["hello_piper_s"] * 1000:.0f} ms | '
            f"{res['hello_one_thread_s'] * 1000:.0f} ms | {res['hello_one_thread_overhead_pct']:+.1f}% |",
            f"| before: one thread per request, 30-word RTF | {res['30_words_piper_rtf']:.3f} | "
            f"{res['30_words_one_thread_rtf']:.3f} | {res['30_words_one_thread_overhead_pct']:+.1f}% |",
            f"| first streamed chunk (3 sentences) | {res['first_chunk_piper_s'] * 1000:.0f} ms | "
            f"{res['first_chunk_autovoice_s'] * 1000:.0f} ms | |",
            f'| in a profile\'s voice: "Hello, world!" latency | | {res["hello_profile_s"] * 1000:.0f} ms | |',
            f"| in a profile's voice: 30-word RTF | | {res['30_words_profile_rtf']:.3f} | |",
            f"| in a profile's voice: first streamed chunk | | {res['first_chunk_profile_s'] * 1000:.0f} ms | |",
            f'| `POST /api/v1/tts` "Hello, world!", 10 clients, 20 s | | {api["rps"]:.1f} req/s, p50 '
            f"{api['p50_ms']:.0f} / p95 {api['p95_ms']:.0f} / p99 {api['p99_ms']:.0f} ms, {api['errors']} errors | |",
        ]
    )
    write_results("tts", res, table)


if __name__ == "__main__":
    main()
