"""Issue 17's candidates for a conversion a strong speaker verifier believes, words kept, measured.

The first pairs of ``bench/quality.py`` (default 10), profiles from utterances 0-4, auto key to the target's
median (speech), judged by Resemblyzer and CAM++ (``bench/judges.py``), the words check (Whisper base)
and DNSMOS. Variants:

*WORLD synthesis at the planned F0* (harvest-free: FCPE F0, CheapTrick, D4C at 16 kHz, 10 ms):

- ``resynth``: the source's own envelope and aperiodicity (what the vocoder costs);
- ``copy-whisper`` / ``copy-mcep``: every voiced frame's whole envelope and aperiodicity replaced by the
  mean of the 4 target frames nearest on position-free Whisper features
  (:func:`autovoice.analysis.content.content_features`) / on speaker-normalised mel-cepstra c1..c20;
- ``regress-whisper``: a per-target MLP (2 x 256, trained at "profile build" on the target's voiced
  frames, about 10 s on 2 cores) from Whisper features and log F0 to the target's mel-cepstra and band
  aperiodicity, applied to the source's features;
- ``regress-ppg`` / ``copy-ppg``: the same with phone posteriors (hama's CTC phoneme recogniser,
  non-blank posteriors renormalised, +-2 frames of context) as the key; needs ``hama`` (Apache-2.0; this
  script extracts its wheel into the bench cache, as ``judges.py`` does for CAM++);
- ``split-S``: below S Hz the source's envelope moved by a mean/variance map, above it the
  ``copy-whisper`` envelope (S = 1500, 2000, 3000): where identity lives and what each band costs the
  words;

*In the shipped pipeline* (TD-PSOLA + envelope filter; ``convert_audio``):

- ``world``: the default engine;
- ``world-spread``: the planned F0's spread around its median scaled to the target's (prosody);
- ``world-warp0.5``: the formant warp exponent 0.5 instead of 0.25;
- ``bandcopy``: the shipped engine (the world engine below 2 kHz, WORLD synthesis of copied target frames
  above it); ``bandcopy-sharp``: without its 25 ms smoothing.

Writes ``bench/results/identity_candidates.json`` and ``.md``.
``python bench/identity_candidates.py [--only a,b] [--pairs N]``; 2-4 min per variant on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _common import RESULTS, SPEAKERS, pairs, utterances, write_results
from autovoice.errors import AutoVoiceError
from judges import CACHE, cosine, identify, judges, profile_embedding

SR = 16_000
HOP = 0.01
HAMA = "hama==1.7.0"
HAMA_WHEEL = "hama-1.7.0-py3-none-any.whl"
Convert = Callable[[dict[str, np.ndarray], np.ndarray, str, np.ndarray], np.ndarray]


def load16(path: Path) -> np.ndarray:
    from autovoice.audio import load

    return np.asarray(load(path, sr=SR, mono=True)[0], dtype=np.float32)


class Features:
    """Per utterance, computed once: F0 (FCPE, 10 ms), CheapTrick envelope, D4C aperiodicity, Whisper
    content features (20 ms, repeated to 10 ms) and, on demand, phone posteriors."""

    def __init__(self) -> None:
        self.cache: dict[str, dict[str, np.ndarray]] = {}
        self._hama: Any = None

    def __call__(self, path: Path) -> dict[str, np.ndarray]:
        if path.name not in self.cache:
            import pyworld

            from autovoice.analysis import estimate_f0
            from autovoice.analysis.content import content_features

            y = load16(path)
            f0 = np.asarray(estimate_f0(y, sr=SR, hop_s=HOP).f0, dtype=np.float64)
            x, t = y.astype(np.float64), np.arange(len(f0)) * HOP
            self.cache[path.name] = {
                "y": y,
                "f0": f0,
                "sp": pyworld.cheaptrick(x, f0, t, SR),
                "ap": pyworld.d4c(x, f0, t, SR),
                "content": _per_10ms(content_features(y), len(f0)),
            }
        return self.cache[path.name]

    def ppg(self, path: Path) -> np.ndarray:
        d = self(path)
        if "ppg" not in d:
            model = self.hama()
            wav = d["y"].reshape(1, -1)
            lp, n = model.session.run(
                [model._log_probs_output_name, model._out_lengths_output_name],
                {
                    model._waveform_input_name: wav,
                    model._waveform_lengths_input_name: np.array([wav.shape[1]]),
                },
            )
            lp = np.asarray(lp)[0][: int(np.asarray(n).reshape(-1)[0])]
            z = np.delete(lp, model.blank_id, axis=1)
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            d["ppg"] = _stack(_per_10ms(np.sqrt(p), len(d["f0"])), 2)
        return d["ppg"]

    def hama(self) -> Any:
        if self._hama is None:
            root = CACHE / "hama-1.7.0"
            if not (root / "hama" / "asr.py").is_file():
                wheel = CACHE / HAMA_WHEEL
                if not wheel.is_file():
                    subprocess.run(  # a package install, as for the CAM++ judge
                        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE), HAMA],
                        check=True,
                    )
                with zipfile.ZipFile(wheel) as z:
                    z.extractall(root)
            sys.path.insert(0, str(root))
            from hama.asr import ASRModel

            self._hama = ASRModel()
        return self._hama


def _per_10ms(a: np.ndarray, n: int) -> np.ndarray:
    return np.asarray(a[np.minimum(np.arange(n) // 2, len(a) - 1)])


def _stack(a: np.ndarray, ctx: int) -> np.ndarray:
    n = len(a)
    return np.concatenate([a[np.clip(np.arange(n) + d, 0, n - 1)] for d in range(-ctx, ctx + 1)], 1)


def _mcep(sp: np.ndarray) -> np.ndarray:
    from autovoice.engines.world.dsp import encode

    return np.asarray(encode(np.log(np.asarray(sp, dtype=np.float64) + 1e-12), warp=1.0))


def _unmcep(m: np.ndarray) -> np.ndarray:
    from autovoice.engines.world.dsp import decode

    return np.exp(decode(m))


class Bank:
    """A target's voiced frames (utterances 0-4): keys and whole envelopes / aperiodicities."""

    def __init__(self, feats: Features, speaker: str, *, ppg: bool = False) -> None:
        rows: dict[str, list[np.ndarray]] = {k: [] for k in ("content", "sp", "ap", "f0", "ppg")}
        for u in utterances(speaker)[:5]:
            d = feats(u)
            v = d["f0"] > 0
            for k in ("content", "sp", "ap", "f0"):
                rows[k].append(d[k][v])
            if ppg:
                rows["ppg"].append(feats.ppg(u)[v])
        self.a = {k: np.concatenate(v) for k, v in rows.items() if v}
        m = _mcep(self.a["sp"])
        self.mean, self.std = m.mean(0), m.std(0) + 1e-4
        self.mcep_keys = ((m - self.mean) / self.std)[:, 1:21]


def nearest(query: np.ndarray, keys: np.ndarray, k: int = 4, *, cosine_sim: bool = True) -> np.ndarray:
    d = -(query @ keys.T) if cosine_sim else (keys**2).sum(1)[None] - 2 * query @ keys.T
    return np.argpartition(d, k - 1, axis=1)[:, :k]


def synth(f0: np.ndarray, sp: np.ndarray, ap: np.ndarray) -> np.ndarray:
    import pyworld

    return np.asarray(pyworld.synthesize(f0, sp, ap, SR, HOP * 1000.0), dtype=np.float32)


def copy_variant(feats: Features, banks: dict[str, Bank], key: str) -> Convert:
    def convert(d: dict[str, np.ndarray], y: np.ndarray, tgt: str, tf0: np.ndarray) -> np.ndarray:
        b, v = banks[tgt], d["f0"] > 0
        sp, ap = d["sp"].copy(), d["ap"].copy()
        if key == "mcep":
            m = _mcep(d["sp"][v])
            idx = nearest(((m - m.mean(0)) / (m.std(0) + 1e-4))[:, 1:21], b.mcep_keys, cosine_sim=False)
        elif key == "ppg":
            idx = nearest(d["ppg"][v], b.a["ppg"])
        else:
            idx = nearest(d["content"][v], b.a["content"])
        sp[v] = np.exp(np.log(b.a["sp"][idx] + 1e-12).mean(1))
        ap[v] = b.a["ap"][idx].mean(1)
        return synth(tf0, sp, ap)

    return convert


def split_variant(banks: dict[str, Bank], split_hz: float) -> Convert:
    def convert(d: dict[str, np.ndarray], y: np.ndarray, tgt: str, tf0: np.ndarray) -> np.ndarray:
        from autovoice.engines.world.dsp import decode

        b, v = banks[tgt], d["f0"] > 0
        idx = nearest(d["content"][v], b.a["content"])
        copied = np.log(b.a["sp"][idx] + 1e-12).mean(1)
        src = np.log(d["sp"][v] + 1e-12)
        m = _mcep(d["sp"][v])
        mapped = (m - m.mean(0)) / (m.std(0) + 1e-4) * b.std + b.mean
        low = decode(mapped) + (src - decode(m))  # mapped, with the source's fine detail
        w = np.clip((np.arange(src.shape[1]) * SR / 1024 - (split_hz - 250)) / 500, 0, 1)[None]
        sp = d["sp"].copy()
        sp[v] = np.exp((1 - w) * low + w * copied)
        return synth(tf0, sp, d["ap"])

    return convert


def regress_variant(feats: Features, key: str) -> Convert:
    nets: dict[str, Any] = {}

    def inputs(d: dict[str, np.ndarray], path_ppg: np.ndarray | None, f0: np.ndarray) -> np.ndarray:
        x = path_ppg if key == "ppg" else d["content"]
        lf0 = np.log(np.maximum(f0, 1.0)) - 5.3
        return np.concatenate([x, (lf0 * (f0 > 0))[:, None]], 1).astype(np.float32)

    def train(tgt: str) -> Any:
        import torch

        torch.manual_seed(0)
        xs, ys = [], []
        for u in utterances(tgt)[:5]:
            d = feats(u)
            v = d["f0"] > 0
            xs.append(inputs(d, feats.ppg(u) if key == "ppg" else None, d["f0"])[v])
            a = _mcep(np.clip(d["ap"], 1e-4, 1.0))[:, :20]
            ys.append(np.concatenate([_mcep(d["sp"]), a], 1)[v])
        x, y = torch.tensor(np.concatenate(xs)), torch.tensor(np.concatenate(ys), dtype=torch.float32)
        ym, ysd = y.mean(0), y.std(0) + 1e-3
        net = torch.nn.Sequential(
            torch.nn.Dropout(0.1),
            torch.nn.Linear(x.shape[1], 256),
            torch.nn.GELU(),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(256, 256),
            torch.nn.GELU(),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(256, y.shape[1]),
        )
        opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-2)
        yn = (y - ym) / ysd
        for _ in range(60):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 256):
                j = perm[i : i + 256]
                loss = torch.nn.functional.smooth_l1_loss(net(x[j]), yn[j])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return net.eval(), ym, ysd

    def convert(d: dict[str, np.ndarray], y: np.ndarray, tgt: str, tf0: np.ndarray) -> np.ndarray:
        import torch

        if tgt not in nets:
            nets[tgt] = train(tgt)
        net, ym, ysd = nets[tgt]
        v = d["f0"] > 0
        x = inputs(d, d.get("ppg"), tf0)[v]
        with torch.no_grad():
            p = (net(torch.tensor(x)) * ysd + ym).numpy().astype(np.float64)
        sp, ap = d["sp"].copy(), d["ap"].copy()
        a = np.zeros((len(p), 40))
        a[:, :20] = p[:, 40:]
        sp[v], ap[v] = _unmcep(p[:, :40]), np.clip(_unmcep(a), 1e-4, 1.0)
        return synth(tf0, sp, ap)

    return convert


def measure(
    name: str, convert: Convert | None, ctx: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """The variant on the pairs: both judges, CER, DNSMOS, RTF. ``convert`` None: the pipeline (``ctx``)."""
    from autovoice.metrics.dnsmos import dnsmos
    from autovoice.metrics.words import character_error_rate, transcribe

    rows = []
    for src, tgt, idx in pairs(args.pairs):
        path = utterances(src)[idx]
        d = ctx["feats"](path)
        if name.startswith("regress-ppg") or name == "copy-ppg":
            ctx["feats"].ppg(path)
        y = d["y"]
        f0 = d["f0"]
        tf0 = f0 * ctx["medians"][tgt] / float(np.median(f0[f0 > 0]))
        if convert is None:
            ctx["profile"](tgt)  # built before the clock starts
        t0 = time.perf_counter()
        out = convert(d, y, tgt, tf0) if convert is not None else ctx["pipeline"](name, y, tgt)
        seconds = time.perf_counter() - t0
        out = np.asarray(out[: len(y)], dtype=np.float32)
        out = np.pad(out, (0, len(y) - len(out))) * min(1.0, 0.99 / max(float(np.abs(out).max()), 1e-9))
        if path.name not in ctx["texts"]:
            ctx["texts"][path.name] = transcribe(y, sr=SR, language="en")
        row: dict[str, Any] = {"rtf": seconds / (len(y) / SR)}
        for j in judges():
            try:
                e = j.embed(out, sr=SR)
            except AutoVoiceError:  # no voice left in the output (Resemblyzer's voice detector): a miss
                row[f"identified_{j.name}"], row[f"similarity_{j.name}"] = False, 0.0
                row["voiceless"] = 1.0
                continue
            cands = ctx["profiles"][j.name] | {"source-clip": j.embed(y, sr=SR)}
            row[f"identified_{j.name}"] = identify(e, cands) == tgt
            row[f"similarity_{j.name}"] = cosine(e, ctx["profiles"][j.name][tgt])
        row["cer"] = character_error_rate(
            ctx["texts"][path.name], transcribe(out, sr=SR, language="en"), language="en"
        )
        row["ovrl"] = dnsmos(out, sr=SR).ovrl
        rows.append(row)
    keys = ("rtf", "cer", "ovrl", *(f"{m}_{j.name}" for j in judges() for m in ("identified", "similarity")))
    summary = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    summary["voiceless_outputs"] = float(sum(r.get("voiceless", 0.0) for r in rows))
    summary["rtf"] = float(np.median([r["rtf"] for r in rows]))
    print(name, summary, flush=True)
    return {"candidate": name, "pairs": len(rows), **summary}


def pipeline(ctx: dict[str, Any]) -> Callable[[str, np.ndarray, str], np.ndarray]:
    """The shipped pipeline's variants; ``ctx["profile"](speaker)`` builds (once) the profile they use."""
    from autovoice.engines.world.engine import WorldEngine
    from autovoice.pipeline import ConversionOptions, convert_audio
    from autovoice.pipeline.enroll import build_profile

    built: dict[str, Any] = {}

    def profile_of(tgt: str) -> Any:
        if tgt not in built:
            built[tgt] = build_profile(utterances(tgt)[:5], name=f"spk{tgt}", engines=["world", "bandcopy"])
        return built[tgt]

    ctx["profile"] = profile_of

    def run(name: str, y: np.ndarray, tgt: str) -> np.ndarray:
        engine = "bandcopy" if name.startswith("bandcopy") else "world"
        options = {
            "world-warp0.5": {"warp_exponent": 0.5, "max_warp": 1.5},
            "bandcopy-sharp": {"copy_smooth_ms": 0.0},
        }.get(name)
        opts = ConversionOptions.parse(
            engine=engine,
            preset="balanced",
            auto_key=True,
            separation="none",
            content="speech",
            metrics="off",
            engine_options=options,
        )
        profile = profile_of(tgt)
        original = WorldEngine.convert
        if name == "world-spread":  # the planned contour's spread scaled to the target's

            def spread(self: Any, y: np.ndarray, *, target_f0: np.ndarray, **kw: Any) -> np.ndarray:
                t = np.asarray(target_f0, dtype=np.float64).copy()
                v = t > 0
                lt = np.log2(t[v])
                med, st = np.median(lt), float(profile.features["world.f0_stats"][2])
                t[v] = 2 ** (med + (lt - med) * st / max(float(lt.std()), 1e-3))
                return original(self, y, target_f0=t, **kw)

            WorldEngine.convert = spread  # type: ignore[method-assign]
        try:
            return convert_audio(y, sr=SR, profile=profile, options=opts).mix[0]
        finally:
            WorldEngine.convert = original  # type: ignore[method-assign]

    return run


ALL = (
    "world",
    "resynth",
    "copy-whisper",
    "copy-mcep",
    "copy-ppg",
    "regress-whisper",
    "regress-ppg",
    "split-1500",
    "split-2000",
    "split-3000",
    "world-spread",
    "world-warp0.5",
    "bandcopy",
    "bandcopy-sharp",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(ALL))
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument(
        "--merge", action="store_true", help="keep the other candidates of the last results file (same pairs)"
    )
    args = parser.parse_args()
    names = args.only.split(",")
    feats = Features()
    ppg = any("ppg" in n for n in names)
    ctx: dict[str, Any] = {"feats": feats, "texts": {}}
    targets = sorted({t for _, t, _ in pairs(args.pairs)})
    ctx["banks"] = {s: Bank(feats, s, ppg=ppg) for s in targets}
    ctx["medians"] = {s: float(np.median(b.a["f0"])) for s, b in ctx["banks"].items()}
    ctx["profiles"] = {
        j.name: {s: profile_embedding(j, [(load16(u), SR) for u in utterances(s)[:5]]) for s in SPEAKERS}
        for j in judges()
    }
    ctx["pipeline"] = pipeline(ctx)
    banks = ctx["banks"]
    variants: dict[str, Convert | None] = {
        "resynth": lambda d, y, tgt, tf0: synth(tf0, d["sp"], d["ap"]),
        "copy-whisper": copy_variant(feats, banks, "content"),
        "copy-mcep": copy_variant(feats, banks, "mcep"),
        "copy-ppg": copy_variant(feats, banks, "ppg"),
        "regress-whisper": regress_variant(feats, "content"),
        "regress-ppg": regress_variant(feats, "ppg"),
        **{f"split-{s}": split_variant(banks, float(s)) for s in (1500, 2000, 3000)},
    }
    t0 = time.perf_counter()
    doc: dict[str, Any] = {"pairs": args.pairs, "candidates": []}
    for name in names:
        doc["candidates"].append(measure(name, variants.get(name), ctx, args))
    doc["seconds"] = time.perf_counter() - t0
    last = RESULTS / "identity_candidates.json"
    if args.merge and last.is_file():
        before = json.loads(last.read_text())
        if before.get("pairs") == args.pairs:
            fresh = {c["candidate"]: c for c in doc["candidates"]}
            kept = [fresh.pop(c["candidate"], c) for c in before["candidates"]]
            doc["candidates"] = kept + list(fresh.values())
    write_results("identity_candidates", doc, table(doc))


def table(doc: dict[str, Any]) -> str:
    lines = [
        f"Identity candidates on the first {doc['pairs']} pairs of bench/quality.py (profiles from utterances "
        "0-4, auto key to the target's median). R: Resemblyzer, C: CAM++ (similarity to the judge's profile of "
        "the target; identified: the target is the nearest of the 10 profiles plus the source clip). CER "
        "against the source's own transcript (Whisper base). RTF: the WORLD-synthesis variants' time leaves out "
        "the analysis (computed once per utterance for all of them) and the regressions' includes each "
        "target's training on its first pair; the pipeline variants' is the whole conversion.",
        "",
        "| candidate | R identified | R similarity | C identified | C similarity | CER | DNSMOS OVRL | RTF |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in doc["candidates"]:
        lines.append(
            f"| {c['candidate']} | {c['identified_resemblyzer'] * 100:.0f}% | {c['similarity_resemblyzer']:.3f} | "
            f"{c['identified_campplus'] * 100:.0f}% | {c['similarity_campplus']:.3f} | {c['cer'] * 100:.1f}% | "
            f"{c['ovrl']:.2f} | {c['rtf']:.3f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
