"""Development benchmark of the ``world`` engine on LibriSpeech pairs (speech, 16 kHz).

For each of 10 speakers, utterances 0..5 form the enrollment (35..54 s) and 6..9 are held out. A pair
converts a held-out utterance (6 or 7) of one speaker toward another speaker's profile, at the source's
F0 moved by whole semitones to the profile's median (what ``--auto-key`` does). Measured per pair:

- ``sim``: resemblyzer cosine of the output to the target's held-out utterances 8 and 9 (mean);
  ``floor``: the same for the unconverted source; ``gain = sim - floor``;
- ``ident``: the output is closest to the target among the 10 enrollment embeddings plus the source;
- ``pitch_cents``: median |cents| of the output's FCPE F0 against ``target_f0`` (frames voiced in both);
- ``ovrl``: DNSMOS OVRL (speechmos) of the output;
- ``rtf``: engine ``convert`` seconds / audio seconds (F0 tracking excluded).

Run ``python bench/engine_dev.py --pairs 20 --preset balanced --song`` from the repository root; it
writes ``bench/results/engine_dev_<preset>.json`` and ``.md``. Experiments (``--options '{"knn_k": 0}'``
to override engine options, ``--kind same|cross``, ``--only NAME``) only print their table.
``--save-audio DIR`` keeps the converted wavs; ``--song`` also times the engine on a 30 s excerpt of the
shared song at 44.1 kHz. Unconverted F0 tracks, embeddings and DNSMOS scores are cached in
``/tmp/autovoice_engine_dev_cache.pkl``. The whole run takes ~10 min on 2 cores (DNSMOS, FCPE and
the speaker encoder dominate).

Data: LibriSpeech test-other, CC BY 4.0, (c) 2014 Vassil Panayotov (see ../shared/data/README.md).
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import FEMALE, MALE, SONG, SPEECH, write_results

SPEAKERS = FEMALE + MALE
ENROLL = range(0, 6)
REFERENCE = (8, 9)
CACHE = Path("/tmp/autovoice_engine_dev_cache.pkl")


def pairs() -> list[tuple[str, int, str]]:
    """(source speaker, source utterance index, target speaker): 20 pairs, 2 per target, balanced
    between cross-gender and same-gender. The first 10 are a balanced dev subset."""
    out: list[tuple[str, int, str]] = []
    for i in range(5):
        out.append((MALE[i], 6, FEMALE[i]))  # cross-gender, M -> F
        out.append((FEMALE[(i + 2) % 5], 7, MALE[i]))  # cross-gender, F -> M
    for i in range(5):
        out.append((FEMALE[(i + 1) % 5], 6, FEMALE[i]))  # same gender
        out.append((MALE[(i + 3) % 5], 7, MALE[i]))
    # Interleave so that any prefix mixes the four kinds.
    cross, same = out[:10], out[10:]
    mixed = [p for ab in zip(cross, same, strict=True) for p in ab]
    return mixed


class Cache:
    """F0 tracks and embeddings of the unconverted files, kept between runs (they do not change)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = pickle.loads(CACHE.read_bytes()) if CACHE.exists() else {}
        self.dirty = False

    def get(self, key: str, fn: Any) -> Any:
        if key not in self.data:
            self.data[key] = fn()
            self.dirty = True
        return self.data[key]

    def save(self) -> None:
        if self.dirty:
            CACHE.write_bytes(pickle.dumps(self.data))


def files(speaker: str) -> list[Path]:
    return sorted((SPEECH / speaker).glob("*.flac"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--preset", default="balanced")
    ap.add_argument("--options", default="{}", help="JSON dict of engine option overrides")
    ap.add_argument("--no-dnsmos", action="store_true")
    ap.add_argument("--save-audio", type=Path, default=None)
    ap.add_argument("--song", action="store_true", help="also time a 30 s song excerpt at 44.1 kHz")
    ap.add_argument("--tag", default="")
    ap.add_argument("--only", default="", help="run only pairs whose source file name contains this")
    ap.add_argument("--kind", choices=["all", "cross", "same"], default="all", help="gender pairing")
    args = ap.parse_args()

    import soundfile as sf

    from autovoice.analysis import F0Track, cents, estimate_f0
    from autovoice.audio import load
    from autovoice.engines.world.engine import WorldEngine
    from autovoice.metrics.similarity import speaker_embedding
    from autovoice.profiles.profile import SampleQuality, VoiceProfile

    cache = Cache()

    def embed(y: np.ndarray) -> np.ndarray:
        return speaker_embedding(y, sr=16000)  # Resemblyzer, unit norm, as the reports compute it

    def audio(p: Path) -> np.ndarray:
        y, _ = load(p, mono=True, validate=False)
        return np.asarray(y, dtype=np.float32)

    def track(p: Path) -> np.ndarray:
        return np.asarray(cache.get(f"f0:{p}", lambda: estimate_f0(audio(p), sr=16000).f0))

    engine = WorldEngine(preset=args.preset, options=json.loads(args.options))

    # Profiles (engine features are recomputed: they depend on the engine's code).
    profiles: dict[str, VoiceProfile] = {}
    enroll_emb: dict[str, np.ndarray] = {}
    t_prof = 0.0
    enrolled_s = 0.0
    for spk in SPEAKERS:
        fs = [files(spk)[i] for i in ENROLL]
        ys = [audio(p) for p in fs]
        f0 = np.concatenate([track(p)[: int(np.ceil(len(y) / 160))] for p, y in zip(fs, ys, strict=True)])
        y = np.concatenate([np.pad(y, (0, -len(y) % 160)) for y in ys])
        f0 = f0[: len(y) // 160]
        t0 = time.perf_counter()
        feats = engine.profile_features(y, sr=16000, f0=F0Track(f0, 0.01, "fcpe"))
        t_prof += time.perf_counter() - t0
        enrolled_s += len(y) / 16000
        enroll_emb[spk] = cache.get(f"emb_enroll:{spk}", lambda y=y: embed(y))
        profiles[spk] = VoiceProfile(
            id=f"prof_{spk}",
            name=spk,
            created_at="",
            revision=1,
            embedding=enroll_emb[spk],
            vocal_range=None,
            quality=SampleQuality(len(y) / 16000, 0, 0, 0, 0, len(fs)),
            sample_names=[p.name for p in fs],
            features={f"world.{k}": v for k, v in feats.items()},
        )
    size_kb = sum(v.nbytes for v in profiles[SPEAKERS[0]].features.values()) / 1024

    dnsmos = None
    if not args.no_dnsmos:
        from speechmos import dnsmos as dnsmos_mod

        dnsmos = dnsmos_mod

    rows: list[dict[str, Any]] = []
    for src_spk, utt, tgt_spk in pairs()[: args.pairs]:
        if args.kind != "all" and ((src_spk in FEMALE) == (tgt_spk in FEMALE)) != (args.kind == "same"):
            continue
        p = files(src_spk)[utt]
        if args.only and args.only not in p.name:
            continue
        y = audio(p)
        f0 = track(p)
        prof = profiles[tgt_spk]
        src_med = float(np.median(f0[f0 > 0]))
        tgt_med = float(prof.features["world.f0_stats"][0])
        shift = round(12 * np.log2(tgt_med / src_med))
        target_f0 = (f0 * 2 ** (shift / 12)).astype(np.float32)
        t0, c0 = time.perf_counter(), time.process_time()
        out = engine.convert(y, sr=16000, f0=F0Track(f0, 0.01, "fcpe"), target_f0=target_f0, profile=prof)
        rtf = (time.perf_counter() - t0) / (len(y) / 16000)
        cpu_rtf = (time.process_time() - c0) / (len(y) / 16000)
        assert out.shape == y.shape
        assert out.dtype == np.float32
        e_out = embed(out)
        e_src = cache.get(f"emb:{p}", lambda y=y: embed(y))
        ref_files = [files(tgt_spk)[i] for i in REFERENCE]
        refs = [cache.get(f"emb:{f}", lambda f=f: embed(audio(f))) for f in ref_files]
        sim = float(np.mean([e_out @ r for r in refs]))
        floor = float(np.mean([e_src @ r for r in refs]))
        cands = {**{s: enroll_emb[s] for s in SPEAKERS}, "__source__": e_src}
        best = max(cands, key=lambda s: float(e_out @ cands[s]))
        f_out = estimate_f0(out, sr=16000).f0
        n = min(len(f_out), len(target_f0))
        both = (f_out[:n] > 0) & (target_f0[:n] > 0)
        pitch = float(np.median(np.abs(cents(f_out[:n][both], target_f0[:n][both])))) if both.any() else 999.0
        mos = dnsmos.run(out, sr=16000) if dnsmos else {}
        ovrl = float(mos.get("ovrl_mos", float("nan")))
        sig, bak = float(mos.get("sig_mos", float("nan"))), float(mos.get("bak_mos", float("nan")))
        ovrl_src = (
            float(cache.get(f"mos:{p}", lambda y=y: dnsmos.run(y, sr=16000)["ovrl_mos"]))
            if dnsmos
            else float("nan")
        )
        row = {
            "source": p.stem,
            "target": tgt_spk,
            "shift": shift,
            "sim": sim,
            "floor": floor,
            "gain": sim - floor,
            "ident": best == tgt_spk,
            "best": best,
            "pitch_cents": pitch,
            "ovrl": ovrl,
            "sig": sig,
            "bak": bak,
            "ovrl_src": ovrl_src,
            "rtf": rtf,
            "cpu_rtf": cpu_rtf,
            "seconds": len(y) / 16000,
        }
        rows.append(row)
        print(
            f"{p.stem:>18} -> {tgt_spk:>4} {shift:+3d}st sim {sim:.3f} floor {floor:.3f} "
            f"gain {sim - floor:+.3f} ident {best == tgt_spk!s:5} pitch {pitch:5.1f}c "
            f"ovrl {ovrl:.2f} sig {sig:.2f} bak {bak:.2f} (src {ovrl_src:.2f}) rtf {rtf:.3f}",
            flush=True,
        )
        if args.save_audio:
            args.save_audio.mkdir(parents=True, exist_ok=True)
            sf.write(args.save_audio / f"{p.stem}_to_{tgt_spk}.wav", out, 16000)
    cache.save()

    summary: dict[str, Any] = {
        "preset": args.preset,
        "options": engine.options.model_dump(),
        "pairs": len(rows),
        "sim": float(np.mean([r["sim"] for r in rows])),
        "floor": float(np.mean([r["floor"] for r in rows])),
        "gain": float(np.mean([r["gain"] for r in rows])),
        "ident_rate": float(np.mean([r["ident"] for r in rows])),
        "pitch_cents_median": float(np.median([r["pitch_cents"] for r in rows])),
        "ovrl": float(np.mean([r["ovrl"] for r in rows])),
        "sig": float(np.mean([r["sig"] for r in rows])),
        "bak": float(np.mean([r["bak"] for r in rows])),
        "ovrl_src": float(np.mean([r["ovrl_src"] for r in rows])),
        "rtf_16k": float(
            np.sum([r["rtf"] * r["seconds"] for r in rows]) / np.sum([r["seconds"] for r in rows])
        ),
        "cpu_rtf_16k": float(
            np.sum([r["cpu_rtf"] * r["seconds"] for r in rows]) / np.sum([r["seconds"] for r in rows])
        ),
        "profile_features_rtf": t_prof / enrolled_s,
        "profile_kb": size_kb,
    }
    if args.song:
        summary["rtf_44k"] = song_rtf(engine, profiles[FEMALE[0]])
    label = f"{args.preset}{' ' + args.tag if args.tag else ''}"
    song_head, song_sep = (" RTF 44.1k |", "---|") if args.song else ("", "")
    table = (
        "| preset | pairs | sim | floor | gain | ident | pitch (c) | OVRL (source) | SIG | BAK "
        f"| RTF 16k (CPU) |{song_head}\n"
        f"|---|---|---|---|---|---|---|---|---|---|---|{song_sep}\n"
        f"| {label} | {len(rows)} | {summary['sim']:.3f} | {summary['floor']:.3f} | {summary['gain']:+.3f} | "
        f"{summary['ident_rate'] * 100:.0f} % | {summary['pitch_cents_median']:.1f} | "
        f"{summary['ovrl']:.2f} ({summary['ovrl_src']:.2f}) | {summary['sig']:.2f} | {summary['bak']:.2f} | "
        f"{summary['rtf_16k']:.3f} ({summary['cpu_rtf_16k']:.3f}) |"
        + (f" {summary['rtf_44k']:.3f} |" if args.song else "")
    )
    if args.options != "{}" or args.only or args.kind != "all":
        print("\n" + table)  # an experiment: nothing written
    else:
        name = f"engine_dev_{args.preset}{'_' + args.tag if args.tag else ''}"
        write_results(name, {"summary": summary, "rows": rows}, table)


def song_rtf(engine: Any, profile: Any) -> float:
    """Engine RTF on a 30 s excerpt of the shared song mix at 44.1 kHz (timing only: a mix is no vocal)."""
    from autovoice.analysis import estimate_f0
    from autovoice.audio import load

    y, sr = load(SONG, mono=True, validate=False)
    y = np.asarray(y[sr * 40 : sr * 70], dtype=np.float32)
    track = estimate_f0(y, sr=sr)
    t0 = time.perf_counter()
    out = engine.convert(y, sr=sr, f0=track, target_f0=track.f0, profile=profile)
    rtf = (time.perf_counter() - t0) / (len(y) / sr)
    assert out.shape == y.shape
    return rtf


if __name__ == "__main__":
    main()
