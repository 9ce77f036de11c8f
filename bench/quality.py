"""Conversion quality and speed on real speech (and the song excerpt).

For each of the 10 LibriSpeech speakers in ``../shared/data``: a profile from utterances 0-4; as
sources, held-out utterances (5-8) of two other speakers, one of the same and one of the other sex
(20 pairs). Measured per pair, per preset:

- similarity of the output to a held-out utterance (9) of the target, and the no-conversion floor
  (source vs that utterance);
- identification: is the target the nearest of the 10 speakers' profiles plus the source clip itself;
- DNSMOS (SIG/BAK/OVRL) of the output; pitch accuracy (intended vs re-tracked F0); RTF.

Plus the whole shared song (133 s, 44.1 kHz stereo mix), vocal separated (``--song-separation``, default
``spleeter``), converted to speaker 367 with auto key, for each of ``--song-presets``.

Pairs are measured with the ``full`` report (every frame); the song with ``--song-metrics`` (default
``full``). ``frac_off_50`` is the share of compared voiced frames more than 50 cents from the plan.

Writes ``bench/results/quality[_<engine>][_<f0 method>].json`` and ``.md``. Usage:
``python bench/quality.py [--presets fast,balanced,quality] [--pairs N] [--engine world]
[--f0-method fcpe] [--song-presets balanced] [--song-separation spleeter]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from _common import FEMALE, MALE, SONG, SPEECH, write_results

SPEAKERS = FEMALE + MALE
TARGETS = {"rtf": 0.15, "median_cents": 15.0, "identified": 0.60, "gain": 0.12, "ovrl": 2.9}


def utterances(speaker: str) -> list:  # type: ignore[type-arg]
    return sorted((SPEECH / speaker).glob("*.flac"))


def pairs(n: int) -> list[tuple[str, str, int]]:
    """(source speaker, target speaker, source utterance index): same and cross sex for each target."""
    out = []
    for i, tgt in enumerate(SPEAKERS):
        same = FEMALE if tgt in FEMALE else MALE
        other = MALE if tgt in FEMALE else FEMALE
        same_src = [s for s in same if s != tgt][i % 4]
        cross_src = other[i % 5]
        out += [(same_src, tgt, 5 + i % 4), (cross_src, tgt, 5 + (i + 1) % 4)]
    return out[:n]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="fast,balanced,quality")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--engine", default="world")
    parser.add_argument("--f0-method", default=None, help="default: the preset's")
    parser.add_argument("--song-presets", default="balanced", help="comma list, or '' for no song row")
    parser.add_argument("--song-separation", default="spleeter")
    parser.add_argument("--song-metrics", default="full")
    args = parser.parse_args()

    from autovoice.audio import load
    from autovoice.metrics.similarity import cosine_similarity, speaker_embedding
    from autovoice.pipeline import ConversionOptions, convert_audio
    from autovoice.profiles import build_profile

    t0 = time.perf_counter()
    profiles = {s: build_profile(utterances(s)[:5], name=f"spk{s}") for s in SPEAKERS}
    build_s = (time.perf_counter() - t0) / len(SPEAKERS)
    heldout = {s: speaker_embedding(load(utterances(s)[9], mono=True)[0], sr=16_000) for s in SPEAKERS}

    results: dict[str, Any] = {
        "profile_build_seconds_mean": build_s,
        "engine": args.engine,
        "f0_method": args.f0_method,
        "presets": {},
    }
    for preset in args.presets.split(","):
        rows = []
        options = ConversionOptions.parse(
            engine=args.engine,
            f0_method=args.f0_method,
            preset=preset,
            auto_key=True,
            separation="none",
            metrics="full",
        )
        for src, tgt, idx in pairs(args.pairs):
            y, sr = load(utterances(src)[idx], mono=True)
            res = convert_audio(y, sr=sr, profile=profiles[tgt], options=options, mode="speech")
            out = res.mix[0]
            e_out = speaker_embedding(out, sr=sr)
            e_src = speaker_embedding(y, sr=sr)
            cands = {s: profiles[s].embedding for s in SPEAKERS} | {"source-clip": e_src}
            best = max(cands, key=lambda k: cosine_similarity(e_out, cands[k]))
            rep = res.report
            assert rep is not None
            rows.append(
                {
                    "source": src,
                    "target": tgt,
                    "utterance": utterances(src)[idx].name,
                    "cross_sex": (src in FEMALE) != (tgt in FEMALE),
                    "similarity": cosine_similarity(e_out, heldout[tgt]),
                    "floor": cosine_similarity(e_src, heldout[tgt]),
                    "identified": best == tgt,
                    "nearest": best,
                    "ovrl": rep.dnsmos.ovrl,
                    "sig": rep.dnsmos.sig,
                    "bak": rep.dnsmos.bak,
                    "median_cents": rep.pitch.median_abs_cents,
                    "frac_off_50": rep.pitch.frac_off_50_cents,
                    "rmse_cents": rep.pitch.rmse_cents,
                    "rtf": res.processing_seconds / res.audio_seconds,
                    "shift": res.plan.shift_semitones,
                }
            )
            print(preset, rows[-1], flush=True)
        song = song_row(preset, args) if preset in args.song_presets.split(",") else None
        results["presets"][preset] = {"pairs": rows, "summary": summarise(rows), "song": song}
    name = "quality" + (f"_{args.engine}" if args.engine != "world" else "")
    name += f"_{args.f0_method}" if args.f0_method else ""
    write_results(name, results, table(results))


def song_row(preset: str, args: argparse.Namespace) -> dict[str, Any]:
    """The whole shared song, vocal separated, converted to speaker 367 with auto key."""
    from autovoice.audio import load
    from autovoice.pipeline import ConversionOptions, convert_audio
    from autovoice.profiles import build_profile

    prof = build_profile(utterances("367")[:5], name="song-target")
    y, sr = load(SONG)
    options = ConversionOptions.parse(
        engine=args.engine,
        f0_method=args.f0_method,
        preset=preset,
        auto_key=True,
        separation=args.song_separation,
        metrics=args.song_metrics,
    )
    res = convert_audio(y, sr=sr, profile=prof, options=options)
    rep = res.report
    assert rep is not None
    row = {
        "seconds": res.audio_seconds,
        "sr": sr,
        "channels": int(res.mix.shape[0]),
        "separation": res.separation,
        "timings": res.timings,
        "rtf": res.processing_seconds / res.audio_seconds,
        "shift": res.plan.shift_semitones,
        "pitch_plan": res.plan.to_dict(),
        "median_cents": rep.pitch.median_abs_cents,
        "frac_off_50": rep.pitch.frac_off_50_cents,
        "ovrl": rep.dnsmos.ovrl,
        "similarity_to_target": rep.similarity_to_target,
        "floor": rep.similarity_source_to_target,
        "warnings": res.warnings,
    }
    print("song", preset, row, flush=True)
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, float]:
    med = lambda k: float(statistics.median(r[k] for r in rows))  # noqa: E731
    mean = lambda k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    return {
        "pairs": len(rows),
        "similarity_mean": mean("similarity"),
        "floor_mean": mean("floor"),
        "gain_mean": mean("similarity") - mean("floor"),
        "identified_share": float(np.mean([r["identified"] for r in rows])),
        "ovrl_mean": mean("ovrl"),
        "median_cents": med("median_cents"),
        "frac_off_50_mean": mean("frac_off_50"),
        "rtf_median": med("rtf"),
        "rtf_max": float(max(r["rtf"] for r in rows)),
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        f"Engine `{results['engine']}`, F0 method `{results['f0_method'] or 'the preset’s'}`.",
        "",
        "| preset | pairs | similarity (floor) | gain | identified | DNSMOS OVRL | median pitch error "
        "| frames > 50 c | RTF median (max) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for preset, r in results["presets"].items():
        s = r["summary"]
        lines.append(
            f"| {preset} | {s['pairs']} | {s['similarity_mean']:.3f} ({s['floor_mean']:.3f}) | "
            f"{s['gain_mean']:+.3f} | {s['identified_share'] * 100:.0f}% | {s['ovrl_mean']:.2f} | "
            f"{s['median_cents']:.1f} c | {s['frac_off_50_mean'] * 100:.1f}% | "
            f"{s['rtf_median']:.3f} ({s['rtf_max']:.3f}) |"
        )
    songs = {p: r["song"] for p, r in results["presets"].items() if r["song"]}
    if songs:
        lines += [
            "",
            "| song (133 s, 44.1 kHz stereo) | separation | RTF | separate s | convert s | report s "
            "| similarity (floor) | DNSMOS OVRL | median pitch error | frames > 50 c | shift | warnings |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for preset, g in songs.items():
            t = g["timings"]
            lines.append(
                f"| {preset} | {g['separation']} | {g['rtf']:.3f} | {t.get('separate', 0):.1f} | "
                f"{t.get('convert', 0):.1f} | {t.get('metrics', 0):.1f} | {g['similarity_to_target']:.3f} "
                f"({g['floor']:.3f}) | {g['ovrl']:.2f} | {g['median_cents']:.1f} c | "
                f"{g['frac_off_50'] * 100:.1f}% | {g['shift']:+.0f} | "
                f"{', '.join(w['code'] for w in g['warnings']) or '-'} |"
            )
    lines += [
        "",
        f"Targets (balanced, 2 CPU cores): RTF <= {TARGETS['rtf']}, median pitch error <= "
        f"{TARGETS['median_cents']:.0f} cents, identified >= {TARGETS['identified'] * 100:.0f}%, gain >= "
        f"+{TARGETS['gain']}, DNSMOS OVRL >= {TARGETS['ovrl']}. Profile build: "
        f"{results['profile_build_seconds_mean']:.1f} s per speaker (5 utterances).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
