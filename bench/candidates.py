"""Issue 10's candidates for a zero-shot engine that moves the timbre and keeps the words, measured.

Each candidate is a change to the *mapping step* of the world engine (every other stage stays: CheapTrick
envelopes, the formant warp, TD-PSOLA, the envelope filter), so the table compares mappings alone. The
shipped ones are engines (`world`, `gmm`); the rest are prototypes defined here, as subclasses of the
world engine's mapper:

- ``world``: the world engine's balanced preset (global mean/variance map + 50 % k-NN on normalised c1..c20);
- ``world-global``: the global map alone (``knn_k`` 0);
- ``world-knn1``: the k-NN estimate alone (weight 1): identity by copying frames;
- ``ot``: the global map with full covariances, the Gaussian optimal-transport map between the source's
  and the target's voiced cepstra (shrunk covariances);
- ``ot-knn``: ``ot`` plus the 50 % k-NN blend;
- ``gmm`` / ``gmm-fast``: the shipped ``gmm`` engine at the bench's preset, with / without (``correct`` 0,
  what its ``fast`` preset leaves out) the closed-loop correction;
- ``ctx-knn-0.8``: the class map plus a k-NN on 5 stacked frames (+-20 ms of context), weight 0.8;
- ``whisper-knn-W``: k-NN on Whisper base encoder output with its positional component removed (the mean
  output per position index over the 10 speakers' utterances 0-8 subtracted), values = the target's WORLD
  mel-cepstra of the matched frames, blended at weight W into the global map.

Same 20 pairs, profiles and measures as ``bench/quality.py`` (balanced preset, auto key, ``full`` report;
the Whisper candidates' RTF leaves out the Whisper encoder, which runs outside the engine here),
plus the neighbour-position statistic for the Whisper features (share of the k = 4 neighbours within 1 s of
the query's position in its 30 s window; chance is about 20 % here).

Writes ``bench/results/candidates.json`` and ``.md``. ``python bench/candidates.py [--only a,b] [--pairs N]``;
about 3 min per candidate on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from _common import SPEAKERS, pairs, utterances, write_results
from autovoice.engines.world.dsp import analyse, encode, smooth_time
from autovoice.engines.world.engine import WorldEngine
from autovoice.engines.world.mapping import Mapper

WHISPER_SR = 16_000
WINDOW = 30 * WHISPER_SR


def _shrunk_cov(x: np.ndarray, lam: float = 0.1) -> np.ndarray:
    s = np.cov(x, rowvar=False)
    return np.asarray((1 - lam) * s + lam * np.diag(np.diag(s)))


def _sqrtm(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, v = np.linalg.eigh(a)
    w = np.clip(w, 1e-8, None)
    return (v * np.sqrt(w)) @ v.T, (v / np.sqrt(w)) @ v.T


def ot_matrix(cs: np.ndarray, ct: np.ndarray) -> np.ndarray:
    """The linear optimal-transport map between N(., cs) and N(., ct)."""
    s_half, s_ihalf = _sqrtm(cs)
    mid, _ = _sqrtm(s_half @ ct @ s_half)
    return np.asarray(s_ihalf @ mid @ s_ihalf)


class OtMapper(Mapper):
    """Voiced frames through the Gaussian OT map (c1..), c0 from the global map; optional k-NN blend."""

    knn_weight = 0.0

    def map(self, c: np.ndarray, voiced: np.ndarray) -> np.ndarray:
        w, self.w = self.w, 0.0
        out = super().map(c, voiced)
        self.w = w
        src, tgt = self.s.frames_v, self.t.knn
        assert src is not None
        assert tgt is not None
        a = ot_matrix(_shrunk_cov(src[:, 1:]), _shrunk_cov(tgt[:, 1:]))
        out[voiced, 1:] = tgt.mean(0)[1:] + (c[voiced, 1:] - src.mean(0)[1:]) @ a.T
        if self.knn_weight > 0 and voiced.any():
            z = (out[voiced] - self.t.mean_v) / self.t.std_v
            knn = out.copy()
            knn[voiced] = self._knn(z)
            knn = smooth_time(knn, self.knn_smooth_ms, hop_s=self.hop_s)
            out[voiced] = (1 - self.knn_weight) * out[voiced] + self.knn_weight * knn[voiced]
        return out


class OtKnnMapper(OtMapper):
    knn_weight = 0.5


def _stack(z: np.ndarray, ctx: int, q: int) -> np.ndarray:
    base = z[:, 1 : q + 1]
    parts = []
    for d in range(-ctx, ctx + 1):
        idx = np.clip(np.arange(len(base)) + d, 0, len(base) - 1)
        parts.append(base[idx] * (1.0 if d == 0 else 0.7))
    return np.concatenate(parts, 1).astype(np.float32)


class CtxKnnMapper:
    """The gmm engine's class map, then a k-NN on stacked frames blended at :attr:`weight`."""

    weight, ctx, k = 0.8, 2, 4

    def __init__(self, inner: Mapper) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def map(self, c: np.ndarray, voiced: np.ndarray) -> np.ndarray:
        m = self.inner
        out = m.map(c, voiced)
        if not voiced.any():
            return out
        t = m.t
        assert t.knn is not None
        keys = _stack((t.knn - t.mean_v) / t.std_v, self.ctx, m.q)
        norms = (keys**2).sum(1)
        z = np.zeros_like(c)
        z[voiced] = m.refine((c[voiced] - m.s.mean_v) / m.s.std_v)
        query = _stack(z, self.ctx, m.q)[voiced]
        d = norms[None, :] - 2.0 * query @ keys.T
        idx = np.argpartition(d, self.k - 1, axis=1)[:, : self.k]
        knn = out.copy()
        knn[voiced] = t.knn[idx].mean(1)
        knn = smooth_time(knn, m.knn_smooth_ms, hop_s=m.hop_s)
        out[voiced] = (1 - self.weight) * out[voiced] + self.weight * knn[voiced]
        return out

    def log_gain(self, log_src: np.ndarray, f0: np.ndarray) -> np.ndarray:
        return Mapper.log_gain(self, log_src, f0)  # type: ignore[arg-type]


class Whisper:
    """Whisper base encoder output per 20 ms frame, with the mean per position index removed."""

    def __init__(self) -> None:
        import ctranslate2

        from autovoice.audio import load
        from autovoice.metrics.words import log_mel
        from autovoice.models.cache import load_whisper

        self._ct2, self._log_mel = ctranslate2, log_mel
        self.model = load_whisper("cpu")
        outs = [self.encode(load(u, mono=True)[0]) for s in SPEAKERS for u in utterances(s)[:9]]
        n = max(len(e) for e in outs)
        sums, counts = np.zeros((n, outs[0].shape[1])), np.zeros(n)
        for e in outs:
            sums[: len(e)] += e
            counts[: len(e)] += 1
        self.position_mean = sums / np.maximum(counts, 1)[:, None]

    def encode(self, y: np.ndarray) -> np.ndarray:
        n = min(len(y), WINDOW)
        mel = self._log_mel(np.pad(y[:n], (0, WINDOW - n)))[None].astype(np.float32)
        out = self.model.encode(self._ct2.StorageView.from_array(np.ascontiguousarray(mel)), to_cpu=True)
        return np.asarray(out)[0][: int(np.ceil(n / 320))]

    def features(self, y: np.ndarray, *, positional: bool = False) -> np.ndarray:
        e = self.encode(y)
        if not positional:
            e = e - self.position_mean[: len(e)]
        return np.asarray(e / np.linalg.norm(e, axis=1, keepdims=True), dtype=np.float32)


class WhisperTargets:
    """Per target speaker: position-free Whisper features of its voiced 20 ms frames (utterances 0-4)
    and the matching WORLD mel-cepstra (mean of the two 10 ms frames)."""

    def __init__(self, whisper: Whisper) -> None:
        from autovoice.analysis.f0 import estimate_f0
        from autovoice.audio import load

        self.keys: dict[str, np.ndarray] = {}
        self.values: dict[str, np.ndarray] = {}
        self.positions: dict[str, np.ndarray] = {}
        self.raw: dict[str, np.ndarray] = {}
        for s in SPEAKERS:
            keys, values, positions, raw = [], [], [], []
            for u in utterances(s)[:5]:
                y, _ = load(u, mono=True)
                f0 = np.asarray(estimate_f0(y, sr=WHISPER_SR).f0, dtype=np.float64)
                log_sp = np.log(analyse(y.astype(np.float32), f0, np.arange(len(f0)), hop_s=0.01))
                mcep = encode(log_sp, warp=1.0)
                k, r = whisper.features(y), whisper.features(y, positional=True)
                n = min(len(k), len(mcep) // 2)
                voiced = (f0[0 : 2 * n : 2] > 0) & (f0[1 : 2 * n : 2] > 0)
                keys.append(k[:n][voiced])
                raw.append(r[:n][voiced])
                values.append(0.5 * (mcep[0 : 2 * n : 2] + mcep[1 : 2 * n : 2])[voiced])
                positions.append(np.arange(n)[voiced])
            self.keys[s], self.values[s] = np.concatenate(keys), np.concatenate(values)
            self.positions[s], self.raw[s] = np.concatenate(positions), np.concatenate(raw)


class WhisperKnnMapper:
    """The global map with the voiced frames blended toward the mean of the 4 target frames nearest on
    position-free Whisper features (the query is the source frame's 20 ms Whisper frame)."""

    def __init__(self, inner: Mapper, keys: np.ndarray, values: np.ndarray, query: np.ndarray, w: float):
        self.inner, self.keys, self.values, self.query, self.weight = inner, keys, values, query, w

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def map(self, c: np.ndarray, voiced: np.ndarray) -> np.ndarray:
        out = self.inner.map(c, voiced)
        if not voiced.any():
            return out
        frames = np.minimum(np.arange(len(c)) // 2, len(self.query) - 1)  # one window: the whole clip
        sim = self.query[frames[voiced]] @ self.keys.T
        idx = np.argpartition(-sim, 3, axis=1)[:, :4]
        est = out.copy()
        est[voiced] = self.values[idx].mean(1)
        est = smooth_time(est, 25.0, hop_s=self.inner.hop_s)
        out[voiced] = (1 - self.weight) * out[voiced] + self.weight * est[voiced]
        return out

    def log_gain(self, log_src: np.ndarray, f0: np.ndarray) -> np.ndarray:
        return Mapper.log_gain(self, log_src, f0)  # type: ignore[arg-type]


def neighbour_position_share(whisper: Whisper, targets: WhisperTargets, *, positional: bool) -> float:
    """Share of the 4 nearest target frames within 1 s (50 frames) of the query frame's position."""
    from autovoice.audio import load

    shares = []
    for src, tgt, idx in pairs(20):
        q = whisper.features(load(utterances(src)[idx], mono=True)[0], positional=positional)
        keys = targets.raw[tgt] if positional else targets.keys[tgt]
        nn = np.argpartition(-(q @ keys.T), 3, axis=1)[:, :4]
        shares.append(float(np.mean(np.abs(targets.positions[tgt][nn] - np.arange(len(q))[:, None]) <= 50)))
    return float(np.mean(shares))


def run(name: str, args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    """Convert the 20 pairs with candidate ``name``; the quality bench's measures."""
    from autovoice.audio import load
    from autovoice.engines import gmm
    from autovoice.metrics.similarity import cosine_similarity, speaker_embedding
    from autovoice.metrics.words import character_error_rate, transcribe
    from autovoice.pipeline import ConversionOptions, convert_audio

    engine, options, wrap = "world", {}, None
    state: dict[str, Any] = {}
    if name == "world":
        pass
    elif name == "world-global":
        options = {"knn_k": 0, "knn_weight": 0.0}
    elif name == "world-knn1":
        options = {"knn_weight": 1.0}
    elif name in ("ot", "ot-knn"):
        cls = OtMapper if name == "ot" else OtKnnMapper
        wrap = lambda m: cls(m.t, m.s, warp=m.warp, params=state["params"], hop_s=m.hop_s)  # noqa: E731
    elif name in ("gmm", "gmm-fast"):
        engine, options = "gmm", ({"correct": 0} if name == "gmm-fast" else {})
    elif name == "ctx-knn-0.8":
        engine, options, wrap = "gmm", {"correct": 0}, CtxKnnMapper
    elif name.startswith("whisper-knn-"):
        weight = float(name.rsplit("-", 1)[1])
        options = {"knn_k": 0, "knn_weight": 0.0, "window_s": 60.0}
        wrap = lambda m: WhisperKnnMapper(  # noqa: E731
            m, ctx["targets"].keys[state["tgt"]], ctx["targets"].values[state["tgt"]], state["query"], weight
        )
    else:
        raise SystemExit(f"unknown candidate {name}")

    engine_cls = gmm.GmmEngine if engine == "gmm" else WorldEngine
    original = engine_cls.make_mapper

    def mapper(self: Any, *a: Any, **kw: Any) -> Any:
        state["params"] = kw["params"]
        m = original(self, *a, **kw)
        return wrap(m) if wrap is not None else m

    engine_cls.make_mapper = mapper  # type: ignore[method-assign]
    try:
        opts = ConversionOptions.parse(
            engine=engine,
            preset=args.preset,
            auto_key=True,
            separation="none",
            content="speech",
            metrics="full",
            engine_options=options or None,
        )
        rows = []
        for src, tgt, idx in pairs(args.pairs):
            path = utterances(src)[idx]
            y, sr = load(path, mono=True)
            if path.name not in ctx["sources"]:
                ctx["sources"][path.name] = {
                    "text": transcribe(y, sr=sr, language="en"),
                    "embedding": speaker_embedding(y, sr=sr),
                }
            source = ctx["sources"][path.name]
            state["tgt"] = tgt
            if "whisper" in ctx:
                state["query"] = ctx["whisper"].features(y)
            res = convert_audio(y, sr=sr, profile=ctx["profiles"][tgt], options=opts)
            out = res.mix[0]
            e = speaker_embedding(out, sr=sr)
            cands = {s: ctx["profiles"][s].embedding for s in SPEAKERS} | {"source-clip": source["embedding"]}
            nearest = max(cands, key=lambda k: cosine_similarity(e, cands[k]))
            assert res.report is not None
            rows.append(
                {
                    "identified": nearest == tgt,
                    "gain": cosine_similarity(e, ctx["heldout"][tgt])
                    - cosine_similarity(source["embedding"], ctx["heldout"][tgt]),
                    "cer": character_error_rate(
                        source["text"], transcribe(out, sr=sr, language="en"), language="en"
                    ),
                    "ovrl": res.report.dnsmos.ovrl,
                    "median_cents": res.report.pitch.median_abs_cents,
                    "rtf": res.processing_seconds / res.audio_seconds,
                }
            )
    finally:
        engine_cls.make_mapper = original  # type: ignore[method-assign]
    summary: dict[str, Any] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    summary["rtf"] = float(np.median([r["rtf"] for r in rows]))
    print(name, summary, flush=True)
    return {"candidate": name, "pairs": len(rows), **summary}


ALL = (
    "world",
    "world-global",
    "world-knn1",
    "ot",
    "ot-knn",
    "gmm",
    "gmm-fast",
    "ctx-knn-0.8",
    "whisper-knn-0.5",
    "whisper-knn-1.0",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(ALL))
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--preset", default="balanced")
    args = parser.parse_args()

    from autovoice.audio import load
    from autovoice.metrics.similarity import speaker_embedding
    from autovoice.pipeline.enroll import build_profile

    t0 = time.perf_counter()
    ctx: dict[str, Any] = {
        "profiles": {s: build_profile(utterances(s)[:5], name=f"spk{s}") for s in SPEAKERS},
        "heldout": {s: speaker_embedding(load(utterances(s)[9], mono=True)[0], sr=16_000) for s in SPEAKERS},
        "sources": {},
    }
    names = args.only.split(",")
    doc: dict[str, Any] = {"preset": args.preset, "candidates": []}
    if any(n.startswith("whisper") for n in names):
        ctx["whisper"] = Whisper()
        ctx["targets"] = WhisperTargets(ctx["whisper"])
        doc["whisper_neighbours_within_1s"] = {
            "raw": neighbour_position_share(ctx["whisper"], ctx["targets"], positional=True),
            "position_mean_removed": neighbour_position_share(
                ctx["whisper"], ctx["targets"], positional=False
            ),
        }
    run_one: Callable[[str], dict[str, Any]] = lambda n: run(n, args, ctx)  # noqa: E731
    doc["candidates"] = [run_one(n) for n in names]
    doc["seconds"] = time.perf_counter() - t0
    write_results("candidates", doc, table(doc))


def table(doc: dict[str, Any]) -> str:
    lines = [
        f"Mapping candidates on the 20 LibriSpeech pairs ({doc['preset']} preset, auto key, profiles from "
        "utterances 0-4). CER against the source's own transcript (Whisper base).",
        "",
        "| candidate | identified | gain | CER | DNSMOS OVRL | median pitch error | RTF (median) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in doc["candidates"]:
        lines.append(
            f"| {c['candidate']} | {c['identified'] * 100:.0f}% | {c['gain']:+.3f} | {c['cer'] * 100:.1f}% | "
            f"{c['ovrl']:.2f} | {c['median_cents']:.1f} c | {c['rtf']:.3f} |"
        )
    share = doc.get("whisper_neighbours_within_1s")
    if share:
        lines += [
            "",
            f"Whisper neighbours within 1 s of the query's position: raw {share['raw'] * 100:.0f}%, "
            f"position mean removed {share['position_mean_removed'] * 100:.0f}%.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
