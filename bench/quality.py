"""Conversion quality and speed on real speech (and the song excerpt).

For each of the 10 LibriSpeech speakers in ``../shared/data``: a profile from utterances 0-4; as
sources, held-out utterances (5-8) of two other speakers, one of the same and one of the other sex
(20 pairs). Measured per pair, per preset:

- similarity of the output to a held-out utterance (9) of the target, and the no-conversion floor
  (source vs that utterance);
- identification: is the target the nearest of the 10 speakers' profiles plus the source clip itself;
- DNSMOS (SIG/BAK/OVRL) of the output; pitch accuracy (intended vs re-tracked F0); RTF;
- the words check (``--words``, on by default): Whisper base transcribes the source utterance (once) and
  the output, in English; ``cer`` is the output's character error rate against the source's own
  transcript. ``baseline_cer`` is the same for a plain WORLD analysis-resynthesis of the source at its own
  F0 (harvest, CheapTrick, D4C), so what the conversion costs the words shows above that floor.

``--profile-seconds N`` builds each profile from only the first N seconds of utterances 0-4 (taken in
order) instead of all of them, to see how quality holds with little enrollment audio;
``--profile-utterances 9`` builds it from all nine non-held-out utterances (0-8; the sources of other
pairs are other speakers' utterances, and utterance 9 stays held out for similarity).

**Two speaker judges** (``bench/judges.py``): Resemblyzer, which AutoVoice ships and reports, and CAM++, a
strong verifier used by the benchmarks only (Resemblyzer alone is easy to please). For each judge the
profile is the normalised mean of its embeddings of the enrollment samples; ``similarity`` is to the
target's held-out utterance 9, ``identified`` means the target is the nearest of the 10 profiles plus
the source clip itself. No engine uses either judge.

Plus the whole shared song (133 s, 44.1 kHz stereo mix), vocal separated (``--song-separation``, default
``spleeter``), converted to speaker 367 with auto key, for each of ``--song-presets``; its words check
compares the output mix's transcript with the input mix's.

Pairs are measured with the ``full`` report (every frame); the song with ``--song-metrics`` (default
``full``). ``frac_off_50`` is the share of compared voiced frames more than 50 cents from the plan.

Writes ``bench/results/quality[_<engine>][_<f0 method>][_p<N>s].json`` and ``.md``. Usage:
``python bench/quality.py [--presets fast,balanced,quality] [--pairs N] [--engine world]
[--f0-method fcpe] [--song-presets balanced] [--song-separation spleeter] [--profile-seconds N]
[--no-words]``. ``--pairs 0`` measures the song alone (``quality[_<engine>]_song``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from _common import FEMALE, SONG, SPEAKERS, pairs, utterances, write_results
from judges import cosine, identify, judges, profile_embedding

#: Language of the LibriSpeech recordings, for the words check.
LANGUAGE = "en"
#: The speaker judges, by name (bench/judges.py): the columns of the tables.
JUDGES = ("resemblyzer", "campplus")
TARGETS = {"rtf": 0.15, "median_cents": 15.0, "identified": 0.60, "gain": 0.12, "ovrl": 2.9}


def profile_samples(speaker: str, seconds: float | None, count: int = 5) -> list[Any]:
    """Utterances 0..count-1 of ``speaker``: the files, or their first ``seconds`` as one (y, sr) sample.

    The utterances are joined in order and cut at ``seconds`` (one sample, so that no leftover piece is
    shorter than the one second a sample needs).
    """
    from autovoice.audio import load

    files = utterances(speaker)[:count]
    if seconds is None:
        return files
    pieces, sr, total = [], 16_000, 0
    for f in files:
        y, sr = load(f, mono=True)
        pieces.append(y)
        total += y.size
        if total >= seconds * sr:
            break
    return [(np.concatenate(pieces)[: int(round(seconds * sr))], sr)]


def world_resynthesis(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Plain WORLD analysis-resynthesis at the source's own F0: what the vocoder alone does to the words."""
    import pyworld

    x = np.ascontiguousarray(y, dtype=np.float64)
    f0, t = pyworld.harvest(x, sr, frame_period=5.0)
    sp = pyworld.cheaptrick(x, f0, t, sr)
    ap = pyworld.d4c(x, f0, t, sr)
    out = pyworld.synthesize(f0, sp, ap, sr, frame_period=5.0)[: y.size]
    return np.clip(out, -1.0, 1.0).astype(np.float32)


class Words:
    """The words check with its caches: source transcripts and baselines per source utterance."""

    def __init__(self) -> None:
        self.sources: dict[str, dict[str, Any]] = {}
        self.seconds = 0.0
        self.audio_seconds = 0.0

    def transcribe(self, y: np.ndarray, *, sr: int) -> str:
        from autovoice.metrics.words import transcribe

        t0 = time.perf_counter()
        text = transcribe(y, sr=sr, language=LANGUAGE)
        self.seconds += time.perf_counter() - t0
        self.audio_seconds += y.size / sr
        return text

    def source(self, name: str, y: np.ndarray, *, sr: int) -> dict[str, Any]:
        """The source's transcript and its WORLD-resynthesis baseline, computed once per utterance."""
        from autovoice.metrics.words import character_error_rate

        if name not in self.sources:
            text = self.transcribe(y, sr=sr)
            resynth = self.transcribe(world_resynthesis(y, sr=sr), sr=sr)
            self.sources[name] = {
                "utterance": name,
                "transcript": text,
                "resynthesis_transcript": resynth,
                "cer": character_error_rate(text, resynth, language=LANGUAGE),
            }
            print("source", self.sources[name], flush=True)
        return self.sources[name]

    def summary(self) -> dict[str, Any]:
        cers = [s["cer"] for s in self.sources.values()]
        return {
            "language": LANGUAGE,
            "sources": len(cers),
            "baseline_cer_mean": float(np.mean(cers)) if cers else None,
            "baseline_cer_median": float(statistics.median(cers)) if cers else None,
            "transcribe_seconds": self.seconds,
            "transcribed_audio_seconds": self.audio_seconds,
            "transcribe_rtf": self.seconds / self.audio_seconds if self.audio_seconds else None,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="fast,balanced,quality")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--engine", default="world")
    parser.add_argument("--f0-method", default=None, help="default: the preset's")
    parser.add_argument("--song-presets", default="balanced", help="comma list, or '' for no song row")
    parser.add_argument("--song-separation", default="spleeter")
    parser.add_argument("--song-metrics", default="full")
    parser.add_argument(
        "--profile-seconds",
        type=float,
        default=None,
        help="build profiles from the first N seconds of utterances 0-4 (default: all of them)",
    )
    parser.add_argument(
        "--profile-utterances",
        type=int,
        default=5,
        choices=(5, 9),
        help="build profiles from utterances 0-4 (default) or all nine non-held-out ones (0-8)",
    )
    parser.add_argument(
        "--words",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="transcribe sources and outputs (Whisper base) and report the character error rate",
    )
    args = parser.parse_args()

    from autovoice.audio import load
    from autovoice.pipeline import ConversionOptions, convert_audio
    from autovoice.pipeline.enroll import build_profile

    samples = {s: profile_samples(s, args.profile_seconds, args.profile_utterances) for s in SPEAKERS}
    t0 = time.perf_counter()
    profiles = {s: build_profile(samples[s], name=f"spk{s}") for s in SPEAKERS}
    build_s = (time.perf_counter() - t0) / len(SPEAKERS)
    judged = {j.name: speaker_embeddings(j, samples) for j in judges()}

    results: dict[str, Any] = {
        "profile_build_seconds_mean": build_s,
        "engine": args.engine,
        "f0_method": args.f0_method,
        "profile_seconds": args.profile_seconds,
        "profile_utterances": args.profile_utterances,
        "presets": {},
    }
    words = Words() if args.words else None
    for preset in args.presets.split(","):
        rows = []
        options = ConversionOptions.parse(
            engine=args.engine,
            f0_method=args.f0_method,
            preset=preset,
            auto_key=True,
            separation="none",
            content="auto",
            metrics="full",
        )
        for src, tgt, idx in pairs(args.pairs):
            y, sr = load(utterances(src)[idx], mono=True)
            res = convert_audio(y, sr=sr, profile=profiles[tgt], options=options)
            out = res.mix[0]
            verdicts = {j.name: judge_row(j, judged[j.name], out, y, sr=sr, target=tgt) for j in judges()}
            rep = res.report
            assert rep is not None
            checked: dict[str, Any] = {}
            if words is not None:
                from autovoice.metrics.words import character_error_rate

                base = words.source(utterances(src)[idx].name, y, sr=sr)
                text = words.transcribe(out, sr=sr)
                checked = {
                    "source_text": base["transcript"],
                    "output_text": text,
                    "cer": character_error_rate(base["transcript"], text, language=LANGUAGE),
                    "baseline_cer": base["cer"],
                }
            rows.append(
                {
                    "source": src,
                    "target": tgt,
                    "utterance": utterances(src)[idx].name,
                    "cross_sex": (src in FEMALE) != (tgt in FEMALE),
                    **{f"{k}_{name}": v for name, d in verdicts.items() for k, v in d.items()},
                    "ovrl": rep.dnsmos.ovrl,
                    "sig": rep.dnsmos.sig,
                    "bak": rep.dnsmos.bak,
                    "median_cents": rep.pitch.median_abs_cents,
                    "frac_off_50": rep.pitch.frac_off_50_cents,
                    "rmse_cents": rep.pitch.rmse_cents,
                    "rtf": res.processing_seconds / res.audio_seconds,
                    "shift": res.plan.shift_semitones,
                    "content": res.content.used,
                    **checked,
                }
            )
            print(preset, rows[-1], flush=True)
        song = song_row(preset, args) if preset in args.song_presets.split(",") else None
        summary = summarise(rows) if rows else None
        results["presets"][preset] = {"pairs": rows, "summary": summary, "song": song}
    if words is not None:
        results["words"] = {**words.summary(), "baseline": list(words.sources.values())}
    name = "quality" + (f"_{args.engine}" if args.engine != "world" else "")
    name += "_song" if args.pairs == 0 else ""
    name += f"_{args.f0_method}" if args.f0_method else ""
    name += f"_p{args.profile_seconds:g}s" if args.profile_seconds is not None else ""
    name += "_u9" if args.profile_utterances == 9 else ""
    write_results(name, results, table(results))


def speaker_embeddings(
    judge: Any, samples: dict[str, list[Any]], speakers: tuple[str, ...] = SPEAKERS
) -> dict[str, Any]:
    """A judge's profile of each speaker (from the enrollment samples) and of its held-out utterance 9."""
    from autovoice.audio import load

    def clip(sample: Any) -> tuple[np.ndarray, int]:
        return sample if isinstance(sample, tuple) else load(sample, mono=True)

    return {
        "profiles": {s: profile_embedding(judge, [clip(x) for x in samples[s]]) for s in speakers},
        "heldout": {s: judge.embed(load(utterances(s)[9], mono=True)[0], sr=16_000) for s in speakers},
    }


def judge_row(
    judge: Any, judged: dict[str, Any], out: np.ndarray, src: np.ndarray, *, sr: int, target: str
) -> dict[str, Any]:
    """One judge's verdict on a conversion: similarity to the held-out utterance (and the source's, the
    floor), and whether the target is the nearest of the 10 profiles plus the source clip."""
    e_out, e_src = judge.embed(out, sr=sr), judge.embed(src, sr=sr)
    nearest = identify(e_out, judged["profiles"] | {"source-clip": e_src})
    return {
        "similarity": cosine(e_out, judged["heldout"][target]),
        "floor": cosine(e_src, judged["heldout"][target]),
        "identified": nearest == target,
        "nearest": nearest,
    }


def song_row(preset: str, args: argparse.Namespace) -> dict[str, Any]:
    """The whole shared song, vocal separated, converted to speaker 367 with auto key."""
    from autovoice.audio import load
    from autovoice.pipeline import ConversionOptions, convert_audio
    from autovoice.pipeline.enroll import build_profile

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
        "judges": song_judges(y, sr=sr, converted=res.vocals, separation=res.separation),
    }
    if args.words:  # the sung words: the output mix's transcript against the input mix's
        from autovoice.metrics.words import character_error_rate, transcribe

        row["source_text"] = transcribe(y, sr=sr, language=LANGUAGE)
        row["output_text"] = transcribe(res.mix, sr=sr, language=LANGUAGE)
        row["cer"] = character_error_rate(row["source_text"], row["output_text"], language=LANGUAGE)
    print("song", preset, row, flush=True)
    return row


def song_judges(y: np.ndarray, *, sr: int, converted: np.ndarray, separation: str) -> dict[str, Any]:
    """Both judges on the song: the converted vocal's similarity to the profile (speaker 367, utterances
    0-4) and the floor, the separated source vocal's (the same separation, run again here)."""
    from autovoice.audio import to_mono
    from autovoice.separation import separate

    source = to_mono(separate(np.atleast_2d(y), sr=sr, method=separation).vocals)  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for judge in judges():
        prof = speaker_embeddings(judge, {"367": list(utterances("367")[:5])}, speakers=("367",))
        target = prof["profiles"]["367"]
        sim = cosine(judge.embed(to_mono(converted), sr=sr), target)
        floor = cosine(judge.embed(source, sr=sr), target)
        out[judge.name] = {"similarity": sim, "floor": floor, "gain": sim - floor}
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    med = lambda k: float(statistics.median(r[k] for r in rows))  # noqa: E731
    mean = lambda k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    cer: dict[str, float | None] = {
        "cer_mean": None,
        "cer_median": None,
        "baseline_cer_mean": None,
        "baseline_cer_median": None,
    }
    if rows and "cer" in rows[0]:
        cer = {
            "cer_mean": mean("cer"),
            "cer_median": med("cer"),
            "baseline_cer_mean": mean("baseline_cer"),
            "baseline_cer_median": med("baseline_cer"),
        }
    per_judge: dict[str, float | None] = {}
    for j in JUDGES:
        per_judge |= {
            f"similarity_{j}_mean": mean(f"similarity_{j}"),
            f"floor_{j}_mean": mean(f"floor_{j}"),
            f"gain_{j}_mean": mean(f"similarity_{j}") - mean(f"floor_{j}"),
            f"identified_{j}_share": float(np.mean([r[f"identified_{j}"] for r in rows])),
        }
    return {
        "pairs": len(rows),
        **per_judge,
        "ovrl_mean": mean("ovrl"),
        "median_cents": med("median_cents"),
        "frac_off_50_mean": mean("frac_off_50"),
        "rtf_median": med("rtf"),
        "rtf_max": float(max(r["rtf"] for r in rows)),
        **cer,
    }


def table(results: dict[str, Any]) -> str:
    seconds = results.get("profile_seconds")
    count = results.get("profile_utterances", 5)
    enrol = f"utterances 0-{count - 1}"
    enrol = f"the first {seconds:g} s of {enrol}" if seconds is not None else enrol
    lines = [
        f"Engine `{results['engine']}`, F0 method `{results['f0_method'] or 'the preset’s'}`, "
        f"profiles from {enrol}. Judges: Resemblyzer (R) and CAM++ (C).",
        "",
        "| preset | pairs | R similarity (floor) | R gain | R identified | C similarity (floor) | C gain "
        "| C identified | DNSMOS OVRL | median pitch error | frames > 50 c | RTF median (max) | CER mean (median) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def cer(mean: float | None, median: float | None) -> str:
        return "-" if mean is None or median is None else f"{mean * 100:.1f}% ({median * 100:.1f}%)"

    for preset, r in results["presets"].items():
        s = r["summary"]
        if s is None:  # --pairs 0: the song alone
            continue
        judged = "".join(
            f"{s[f'similarity_{j}_mean']:.3f} ({s[f'floor_{j}_mean']:.3f}) | {s[f'gain_{j}_mean']:+.3f} | "
            f"{s[f'identified_{j}_share'] * 100:.0f}% | "
            for j in JUDGES
        )
        lines.append(
            f"| {preset} | {s['pairs']} | {judged}{s['ovrl_mean']:.2f} | "
            f"{s['median_cents']:.1f} c | {s['frac_off_50_mean'] * 100:.1f}% | "
            f"{s['rtf_median']:.3f} ({s['rtf_max']:.3f}) | {cer(s['cer_mean'], s['cer_median'])} |"
        )
    words = results.get("words")
    first = next((r for r in results["presets"].values() if r["summary"]), None)
    if first is None:  # the song alone: no pairs table
        lines = lines[:1]
    elif words:
        s = first["summary"]
        lines.append(
            f"| WORLD resynthesis, no conversion (floor) | {s.get('pairs', '-')} | - | - | - | - | - | - | - "
            "| - | - | - | "
            f"{cer(s.get('baseline_cer_mean'), s.get('baseline_cer_median'))} |"
        )
    songs = {p: r["song"] for p, r in results["presets"].items() if r["song"]}
    if songs:
        lines += [
            "",
            "| song (133 s, 44.1 kHz stereo) | separation | RTF | separate s | convert s | report s "
            "| R similarity (floor), gain | C similarity (floor), gain | DNSMOS OVRL | median pitch error "
            "| frames > 50 c | shift | CER | warnings |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for preset, g in songs.items():
            t = g["timings"]
            song_cer = f"{g['cer'] * 100:.1f}%" if "cer" in g else "-"
            lines.append(
                f"| {preset} | {g['separation']} | {g['rtf']:.3f} | {t.get('separate', 0):.1f} | "
                f"{t.get('convert', 0):.1f} | {t.get('metrics', 0):.1f} | "
                + "".join(
                    f"{g['judges'][j]['similarity']:.3f} ({g['judges'][j]['floor']:.3f}), "
                    f"{g['judges'][j]['gain']:+.3f} | "
                    for j in JUDGES
                )
                + f"{g['ovrl']:.2f} | {g['median_cents']:.1f} c | "
                f"{g['frac_off_50'] * 100:.1f}% | {g['shift']:+.0f} | "
                f"{song_cer} | "
                f"{', '.join(w['code'] for w in g['warnings']) or '-'} |"
            )
    lines += [
        "",
        f"Targets (balanced, 2 CPU cores): RTF <= {TARGETS['rtf']}, median pitch error <= "
        f"{TARGETS['median_cents']:.0f} cents, identified >= {TARGETS['identified'] * 100:.0f}%, gain >= "
        f"+{TARGETS['gain']}, DNSMOS OVRL >= {TARGETS['ovrl']}. Profile build: "
        f"{results['profile_build_seconds_mean']:.1f} s per speaker ({enrol}).",
    ]
    if words and words["sources"]:
        lines += [
            "",
            "CER: character error rate of the output's transcript against the source's own transcript "
            f"(Whisper base through CTranslate2, int8 on CPU, language `{words['language']}` forced). The "
            "floor row is a plain WORLD analysis-resynthesis of each pair's source, averaged over the pairs; "
            f"over the {words['sources']} distinct sources its CER is mean (median) "
            f"{cer(words['baseline_cer_mean'], words['baseline_cer_median'])}. Recogniser: "
            f"{words['transcribe_seconds']:.0f} s for {words['transcribed_audio_seconds']:.0f} s of audio "
            f"(RTF {words['transcribe_rtf']:.3f}).",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
