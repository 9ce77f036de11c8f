"""Speech or song, voice alone or mix: the two decisions a conversion makes about its input.

1. ``separation=auto`` skips separation for a voice alone (:func:`autovoice.separation.voice_alone`).
   Measured on the shared recordings at their own rates (LibriSpeech 16 kHz mono; the song 44.1 kHz
   stereo) and on mixes built from them: speech with white noise or 0.5 s of reverberation, speech and the
   song's separated vocal with its separated accompaniment at fixed levels below, the mix and the
   accompaniment alone, the mix with a fifth of it silenced (a break in the music), and a synthetic legato
   sung line (harmonic notes with vibrato, a breath every four notes) alone and over the accompaniment. The
   song's vocal is Spleeter's, so its quiet frames are quieter than a recording's; the same with white
   noise 50 dB below full scale stands for a recorded a cappella vocal.
2. ``content=auto`` plans speech or a song (:func:`autovoice.pipeline.pitch_plan.decide_content`) from
   the vocal's FCPE track: the 100 utterances, the song's separated vocal (10 s and 20 s excerpts, whole),
   a synthetic sung melody, and the vocal Spleeter separates from speech under the accompaniment (a
   spoken input with music), each with and without an accompaniment mixed back.
3. The issue's case end to end: utterance 1688-142285-0000 into a profile of speaker 367's utterances 0-4
   with auto key: the shift against the speaking medians' difference, the separation, the time.
4. The 20 speech pairs of ``bench/quality.py`` (profiles from utterances 0-4, held-out sources) converted
   with auto key as ``autovoice convert`` does by default (separation and content ``auto``), and as it did
   before (Spleeter, planned as a song): DNSMOS OVRL of the result (report ``fast``), the shift, what
   ran, the conversion time. (``bench/quality.py`` itself converts its pairs without separation.)

Writes ``bench/results/content.json`` and ``content.md``. Usage: ``python bench/content.py``
(about 10 minutes on 2 cores).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np

from _common import SONG, SPEAKERS, pairs, utterances, write_results

SR16 = 16_000


def active_rms(y: np.ndarray, sr: int) -> float:
    """RMS over the frames within 30 dB of the loud level (the voice or music while it sounds)."""
    hop = sr // 100
    frames = np.lib.stride_tricks.sliding_window_view(np.atleast_2d(y).mean(axis=0), 2 * hop)[::hop]
    power = np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12
    db = 10 * np.log10(power)
    return float(np.sqrt(np.mean(power[db > np.percentile(db, 95) - 30])))


def below(y: np.ndarray, other: np.ndarray, *, sr: int, db: float) -> np.ndarray:
    """``y`` plus ``other`` scaled to ``db`` below ``y`` (by active RMS), same shape as ``y``."""
    scale = active_rms(y, sr) / active_rms(other, sr) * 10 ** (-db / 20)
    return (y + scale * other).astype(np.float32)


def sung_melody(seconds: float = 12.0, *, sr: int = SR16, seed: int = 0) -> np.ndarray:
    """A synthetic sung line: harmonic notes of 0.3-0.9 s with 5.5 Hz vibrato (+-25 cents), a short
    breath every four notes."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    total, k = 0.0, 0
    while total < seconds:
        dur = float(rng.uniform(0.3, 0.9))
        f0 = 220.0 * 2 ** (int(rng.integers(-5, 8)) / 12)
        t = np.arange(int(dur * sr)) / sr
        f = f0 * 2 ** (25 / 1200 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(f) / sr
        note = sum((0.6 / h) * np.sin(h * phase) for h in range(1, 13))
        env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.03)
        out.append(0.2 * env * note)
        k += 1
        gap = 0.35 if k % 4 == 0 else 0.0
        out.append(np.zeros(int(gap * sr)))
        total += dur + gap
    return np.concatenate(out).astype(np.float32)


def reverberant(y: np.ndarray, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.5 * sr)) / sr
    ir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / 0.5)
    ir[0] = 3.0
    out = np.convolve(y, ir)[: len(y)]
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


def voice_rows(song: dict[str, Any]) -> list[dict[str, Any]]:
    from autovoice.audio import load, resample
    from autovoice.separation import voice_alone

    rng = np.random.default_rng(0)
    sr = song["sr"]
    acc16 = resample(song["accompaniment"].mean(axis=0), orig_sr=sr, target_sr=SR16)
    rows: list[dict[str, Any]] = []

    def add(group: str, name: str, y: np.ndarray, rate: int) -> None:
        check = voice_alone(y, sr=rate)
        rows.append({"group": group, "input": name, **check.to_dict()})

    for speaker in SPEAKERS:
        for i, path in enumerate(utterances(speaker)):
            y, _ = load(path, mono=True)
            add("speech", path.stem, y, SR16)
            if i >= 3:
                continue
            noise = rng.standard_normal(len(y)).astype(np.float32)
            for db in (30, 20):
                add(f"speech, white noise {db} dB below", path.stem, below(y, noise, sr=SR16, db=db), SR16)
            add("speech, 0.5 s reverberation", path.stem, reverberant(y, sr=SR16, rng=rng), SR16)
            start = int(rng.integers(0, len(acc16) - len(y)))
            music = acc16[start : start + len(y)]
            for db in (20, 10, 0):
                add(f"speech, accompaniment {db} dB below", path.stem, below(y, music, sr=SR16, db=db), SR16)
    vocal, acc, mix = song["vocals"], song["accompaniment"], song["mix"]
    for seconds in (5, 10, 20):
        n = seconds * sr
        for i in range(mix.shape[1] // n):
            cut = slice(i * n, (i + 1) * n)
            name = f"{seconds} s #{i}"
            add(f"song vocal alone, {seconds} s", name, vocal[:, cut], sr)
            hiss = rng.standard_normal(vocal[:, cut].shape).astype(np.float32) * 10 ** (-50 / 20)
            add(f"song vocal alone, noise at -50 dBFS, {seconds} s", name, vocal[:, cut] + hiss, sr)
            for db in (20, 10):
                add(
                    f"song vocal, accompaniment {db} dB below, {seconds} s",
                    name,
                    below(vocal[:, cut], acc[:, cut], sr=sr, db=db),
                    sr,
                )
            add(f"song mix, {seconds} s", name, mix[:, cut], sr)
            add(f"accompaniment alone, {seconds} s", name, acc[:, cut], sr)
            broken = mix[:, cut].copy()
            broken[:, n // 3 : n // 3 + n // 5] = 0.0
            add(f"song mix with a silent fifth, {seconds} s", name, broken, sr)
    melody = sung_melody()
    add("synthetic sung melody", "12 s", melody, SR16)
    add(
        "synthetic sung melody, accompaniment 10 dB below",
        "12 s",
        below(melody, acc16[: len(melody)], sr=SR16, db=10),
        SR16,
    )
    return rows


def content_rows(song: dict[str, Any]) -> list[dict[str, Any]]:
    from autovoice.analysis import estimate_f0
    from autovoice.audio import load, resample
    from autovoice.pipeline.pitch_plan import decide_content
    from autovoice.separation import separate

    rng = np.random.default_rng(1)
    sr = song["sr"]
    acc16 = resample(song["accompaniment"].mean(axis=0), orig_sr=sr, target_sr=SR16)
    vocal16 = resample(song["vocals"].mean(axis=0), orig_sr=sr, target_sr=SR16)
    rows: list[dict[str, Any]] = []

    def add(group: str, name: str, track: Any) -> None:
        bare = decide_content(track, accompaniment=False)
        mixed = decide_content(track, accompaniment=True)
        voiced_s = float(track.voiced.sum() * track.hop_s)
        rows.append(
            {
                "group": group,
                "input": name,
                "voiced_s": voiced_s,
                "steady_share": bare.steady_share,
                "bare": bare.used,
                "with_accompaniment": mixed.used,
            }
        )

    for speaker in SPEAKERS:
        for i, path in enumerate(utterances(speaker)):
            y, _ = load(path, mono=True)
            add("speech", path.stem, estimate_f0(y, sr=SR16))
            if i == 5:  # one spoken input under music per speaker, its vocal as Spleeter separates it
                start = int(rng.integers(0, len(acc16) - len(y)))
                mixed = below(y, acc16[start : start + len(y)], sr=SR16, db=0)
                sep = separate(mixed, sr=SR16, method="spleeter").vocals
                add("speech under music at 0 dB, separated vocal", path.stem, estimate_f0(sep, sr=SR16))
    whole = estimate_f0(vocal16, sr=SR16)
    add("song vocal, whole", "133 s", whole)
    for seconds in (10, 20):
        n = seconds * 100
        for i in range(len(whole.f0) // n):
            from autovoice.analysis import F0Track

            part = F0Track(whole.f0[i * n : (i + 1) * n], whole.hop_s, whole.method)
            if part.voiced.sum() * part.hop_s >= 2.0:  # the instrumental stretches have no vocal to judge
                add(f"song vocal, {seconds} s", f"#{i}", part)
    add("synthetic sung melody", "12 s", estimate_f0(sung_melody(), sr=SR16))
    return rows


def issue_case() -> dict[str, Any]:
    from autovoice.analysis import estimate_f0, vocal_range
    from autovoice.audio import load
    from autovoice.pipeline import ConversionOptions, convert_audio
    from autovoice.pipeline.enroll import build_profile

    profile = build_profile(utterances("367")[:5], name="f367")
    y, sr = load(utterances("1688")[0])
    source = vocal_range(estimate_f0(y, sr=sr))
    assert profile.vocal_range is not None
    t0 = time.perf_counter()
    res = convert_audio(y, sr=sr, profile=profile, options=ConversionOptions(auto_key=True, metrics="off"))
    return {
        "input": utterances("1688")[0].name,
        "speaking_medians_difference": profile.vocal_range.median_midi - source.median_midi,
        "shift": res.plan.shift_semitones,
        "separation": res.to_dict(contours=False)["separation_decision"],
        "content": res.content.to_dict(),
        "seconds": time.perf_counter() - t0,
        "audio_seconds": res.audio_seconds,
    }


def speech_pairs() -> dict[str, Any]:
    from autovoice.audio import load
    from autovoice.pipeline import ConversionOptions, convert_audio
    from autovoice.pipeline.enroll import build_profile

    ways = {
        "default": ConversionOptions(auto_key=True),
        "before": ConversionOptions(auto_key=True, separation="spleeter", content="song"),
    }
    profiles: dict[str, Any] = {}
    rows = []
    for src, tgt, idx in pairs():
        if tgt not in profiles:
            profiles[tgt] = build_profile(utterances(tgt)[:5], name=f"spk{tgt}")
        y, sr = load(utterances(src)[idx])
        row: dict[str, Any] = {"source": src, "target": tgt, "utterance": utterances(src)[idx].name}
        for way, options in ways.items():
            res = convert_audio(y, sr=sr, profile=profiles[tgt], options=options)
            assert res.report is not None
            row[way] = {
                "ovrl": res.report.dnsmos.ovrl,
                "shift": res.plan.shift_semitones,
                "separation": res.separation,
                "content": res.content.used,
                "seconds": res.processing_seconds,
            }
        print(row, flush=True)
        rows.append(row)
    return {
        way: {
            "ovrl_mean": float(np.mean([r[way]["ovrl"] for r in rows])),
            "seconds_mean": float(np.mean([r[way]["seconds"] for r in rows])),
            "separated": sum(r[way]["separation"] != "none" for r in rows),
            "as_speech": sum(r[way]["content"] == "speech" for r in rows),
            "abs_shift_max": float(max(abs(r[way]["shift"]) for r in rows)),
            "whole_octave_shifts": sum(r[way]["shift"] != 0 and r[way]["shift"] % 12 == 0 for r in rows),
        }
        for way in ways
    } | {"rows": rows}


def summary(rows: list[dict[str, Any]], key: str, value: Any) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["group"]].append(r)
    return {
        g: {"n": len(rs), "share": float(np.mean([r[key] == value for r in rs]))} for g, rs in groups.items()
    }


def main() -> None:
    from autovoice.audio import load
    from autovoice.separation import separate

    t0 = time.perf_counter()
    mix, sr = load(SONG)
    stems = separate(mix, sr=sr, method="spleeter")
    assert stems.accompaniment is not None
    song = {"mix": mix, "vocals": stems.vocals, "accompaniment": stems.accompaniment, "sr": sr}
    voice = voice_rows(song)
    content = content_rows(song)
    doc = {
        "voice_alone": summary(voice, "voice_alone", True),
        "content_bare": summary(content, "bare", "song"),
        "content_with_accompaniment": summary(content, "with_accompaniment", "song"),
        "steady_share": {
            g: [min(r["steady_share"] for r in rs), max(r["steady_share"] for r in rs)]
            for g, rs in _by_group(content).items()
        },
        "issue_case": issue_case(),
        "speech_pairs": speech_pairs(),
        "seconds": time.perf_counter() - t0,
        "voice_rows": voice,
        "content_rows": content,
    }
    write_results("content", doc, table(doc))


def _by_group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r["group"]].append(r)
    return out


def table(doc: dict[str, Any]) -> str:
    lines = [
        "Separation `auto`: inputs taken as a voice alone (separation skipped).",
        "",
        "| input | n | voice alone |",
        "| --- | --- | --- |",
    ]
    for g, s in doc["voice_alone"].items():
        lines.append(f"| {g} | {s['n']} | {s['share'] * 100:.0f} % |")
    lines += [
        "",
        "Content `auto`: inputs planned as a song (the rest as speech), without and with an accompaniment "
        "mixed back; the steady share's range.",
        "",
        "| vocal | n | steady share | song, bare | song, with a band mixed back |",
        "| --- | --- | --- | --- | --- |",
    ]
    for g, s in doc["content_bare"].items():
        lo, hi = doc["steady_share"][g]
        w = doc["content_with_accompaniment"][g]
        lines.append(
            f"| {g} | {s['n']} | {lo:.2f}-{hi:.2f} | {s['share'] * 100:.0f} % | {w['share'] * 100:.0f} % |"
        )
    c = doc["issue_case"]
    lines += [
        "",
        f"The issue's case: {c['input']} into speaker 367 (utterances 0-4), auto key: shift "
        f"{c['shift']:+.2f} semitones (speaking medians {c['speaking_medians_difference']:+.2f} apart), "
        f"separation {c['separation']['used']} ({c['separation']['reason']}), content {c['content']['used']} "
        f"({c['content']['reason']}); {c['seconds']:.1f} s for {c['audio_seconds']:.1f} s of audio "
        "(report off).",
        "",
        "The 20 speech pairs of bench/quality.py, auto key, as `autovoice convert` converts them by default "
        "(separation and content auto) and as it did before (Spleeter, planned as a song):",
        "",
        "| way | DNSMOS OVRL mean | separated | planned as speech | largest shift | whole-octave shifts "
        "| conversion time mean |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for way, w in doc["speech_pairs"].items():
        if way == "rows":
            continue
        lines.append(
            f"| {way} | {w['ovrl_mean']:.2f} | {w['separated']} of 20 | {w['as_speech']} of 20 | "
            f"{w['abs_shift_max']:.1f} | {w['whole_octave_shifts']} | {w['seconds_mean']:.2f} s |"
        )
    lines.append(f"\nAll in {doc['seconds']:.0f} s.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
