"""Auto-key pitch plan: octave moves per phrase with hysteresis, against the old per-syllable cap.

Pure planning, no conversion: FCPE tracks only. Each of the 10 LibriSpeech speakers in
``../shared/data`` is a target whose vocal range comes from utterances 0-4 (as a profile build measures
it); the sources are the pairs of ``bench/quality.py`` (one same-sex and one cross-sex source per target,
a held-out utterance 5-8), planned with exact (speech) auto key and the range cap. The shared song (the
full mix, as ``quality.py`` converts it without separation) is planned onto every target, with the
whole-semitone key (bare vocal) and the whole-octave key (accompaniment mixed back). A third group
doubles each speech source's intervals around its median, a stand-in for in-the-wild speech with a wide
pitch range (the case where the old cap broke the melody). Every plan is made as a conversion makes it:
``content=auto`` (:func:`~autovoice.pipeline.pitch_plan.decide_content`) decides speech or song from the
source's track, with the accompaniment flag of its group; ``content`` says what it chose, and the group
summary counts plans that were not planned as their group expects.

Per plan, with the source melody transposed by the global shift as the reference:

- ``moved``: share of voiced frames more than 50 cents off it (moved by octave decisions);
- ``units``: voiced runs (old) or phrases (new) moved, of those judged;
- ``jumps``: changes of octave move between consecutive voiced runs (octave leaps put into the line);
- ``median``/``mean``: deviation in cents over voiced frames;
- ``out``: share of voiced frames more than 1 semitone outside the target's lowest..highest (what the cap
  is for; ``none`` = the global shift alone).

Writes ``bench/results/pitch_plan.json`` and ``pitch_plan.md``. Usage: ``python bench/pitch_plan.py``.
"""

from __future__ import annotations

import statistics
import time
from itertools import pairwise
from typing import Any

import numpy as np

from _common import FEMALE, SONG, SPEAKERS, pairs, utterances, write_results

HOP_S = 0.01
MOVED_CENTS = 50.0


def track(y: np.ndarray, sr: int) -> Any:
    from autovoice.analysis import estimate_f0

    return estimate_f0(y, sr=sr, method="fcpe", hop_s=HOP_S)


def target_range(speaker: str) -> Any:
    """The vocal range a profile built from utterances 0-4 gets (see ``profiles/build.py``)."""
    from autovoice.analysis import F0Track, vocal_range
    from autovoice.audio import load

    parts = []
    for path in utterances(speaker)[:5]:
        y, sr = load(path, mono=True)
        hop = int(round(HOP_S * sr))
        y = np.pad(y, (0, -len(y) % hop))
        parts.append(track(y, sr).f0[: len(y) // hop])
    return vocal_range(F0Track(np.concatenate(parts).astype(np.float32), HOP_S, "fcpe"))


def old_cap(f0: np.ndarray, *, lowest_hz: float, highest_hz: float) -> np.ndarray:
    """The cap before per-phrase decisions: each voiced run (a syllable) moved by octaves on its own."""
    from autovoice.pipeline.pitch_plan import _runs

    out = f0.astype(np.float64).copy()
    for s, e in _runs(out > 0):
        med = float(np.median(out[s:e]))
        factor = 1.0
        while med * factor > highest_hz and med * factor / 2 >= lowest_hz * 0.75:
            factor /= 2
        while med * factor < lowest_hz and med * factor * 2 <= highest_hz * 1.33:
            factor *= 2
        out[s:e] *= factor
    return out


def measure(planned: np.ndarray, reference: np.ndarray, target: Any) -> dict[str, float]:
    """Deviation of ``planned`` from ``reference`` (the shifted source) and range fit, voiced frames."""
    from autovoice.analysis import cents, hz_to_midi
    from autovoice.pipeline.pitch_plan import _runs

    voiced = reference > 0
    dev = np.abs(cents(planned[voiced], reference[voiced]))
    midi = hz_to_midi(planned[voiced])
    lo, hi = float(hz_to_midi(target.lowest_hz)), float(hz_to_midi(target.highest_hz))
    offsets = [round(float(np.median(cents(planned[s:e], reference[s:e]))) / 1200) for s, e in _runs(voiced)]
    return {
        "moved": float(np.mean(dev > MOVED_CENTS)),
        "median_cents": float(np.median(dev)),
        "mean_cents": float(np.mean(dev)),
        "runs_moved": int(sum(o != 0 for o in offsets)),
        "runs": len(offsets),
        "jumps": int(sum(a != b for a, b in pairwise(offsets))),
        "out": float(np.mean((midi < lo - 1) | (midi > hi + 1))),
    }


def row(name: str, group: str, source: Any, target: Any, expected: str, keep_key: bool) -> dict[str, Any]:
    from autovoice.pipeline import decide_content, plan_pitch

    content = decide_content(source, accompaniment=keep_key)
    mode = content.used
    base = plan_pitch(source, target=target, auto_key=True, mode=mode, keep_key=keep_key)
    new = plan_pitch(source, target=target, auto_key=True, mode=mode, keep_key=keep_key, cap_to_range=True)
    reference = base.target_f0.astype(np.float64)
    old = measure(
        old_cap(reference, lowest_hz=target.lowest_hz, highest_hz=target.highest_hz), reference, target
    )
    return {
        "pair": name,
        "group": group,
        "content": content.used,
        "expected_content": expected,
        "steady_share": content.steady_share,
        "shift": base.shift_semitones,
        "ideal_shift": base.ideal_shift_semitones,
        "target_span": target.span_semitones,
        "none_out": measure(reference, reference, target)["out"],
        "old": old,
        "new": measure(new.target_f0.astype(np.float64), reference, target)
        | {"phrases": new.phrases, "phrases_moved": new.phrases_moved, "moved_share": new.moved_share},
    }


def widened(source: Any) -> Any:
    """The source with every interval from its median doubled (a wide-range speaker)."""
    from autovoice.analysis import F0Track

    f0 = source.f0.astype(np.float64)
    med = float(np.median(f0[f0 > 0]))
    out = np.where(f0 > 0, med * (np.maximum(f0, 1e-9) / med) ** 2, 0.0)
    out[(out < 50) | (out > 1100)] = 0.0
    return F0Track(out.astype(np.float32), source.hop_s, source.method)


def main() -> None:
    from autovoice.audio import load

    t0 = time.perf_counter()
    targets = {s: target_range(s) for s in SPEAKERS}
    # name, group, source, target, the content expected (auto decides), keep_key (accompaniment)
    cases: list[tuple[str, str, Any, Any, str, bool]] = []
    for src, tgt, idx in pairs():
        y, sr = load(utterances(src)[idx], mono=True)
        tr = track(y, sr)
        name = f"{src}->{tgt} ({'cross' if (src in FEMALE) != (tgt in FEMALE) else 'same'})"
        cases.append((name, "speech", tr, targets[tgt], "speech", False))
        cases.append((name, "speech, intervals x2", widened(tr), targets[tgt], "speech", False))
    y, sr = load(SONG, mono=True)
    song = track(y, sr)
    for tgt in SPEAKERS:
        cases.append((f"song->{tgt}", "song, bare vocal", song, targets[tgt], "song", False))
        cases.append((f"song->{tgt}", "song, accompaniment", song, targets[tgt], "song", True))
    rows = [row(*case) for case in cases]
    groups = {
        g: summarise([r for r in rows if r["group"] == g]) for g in dict.fromkeys(r["group"] for r in rows)
    }
    doc = {
        "constants": constants(),
        "seconds": time.perf_counter() - t0,
        "targets": {s: targets[s].to_dict() for s in SPEAKERS},
        "groups": groups,
        "sweep": sweep(cases),
        "rows": rows,
    }
    write_results("pitch_plan", doc, table(doc))


def sweep(cases: list[tuple[str, str, Any, Any, str, bool]]) -> list[dict[str, Any]]:
    """Phrases moved over all plans for other gap and margin choices (return margin min(1, move))."""
    from autovoice.pipeline import decide_content, plan_pitch

    modes = [decide_content(source, accompaniment=keep_key).used for _, _, source, _, _, keep_key in cases]
    out = []
    for gap in (0.2, 0.35, 0.5):
        for margin in (0.0, 1.0, 2.0, 3.0, 4.0):
            plans = [
                plan_pitch(
                    source,
                    target=target,
                    auto_key=True,
                    mode=mode,
                    keep_key=keep_key,
                    cap_to_range=True,
                    phrase_gap_s=gap,
                    move_margin=margin,
                    return_margin=min(1.0, margin),
                )
                for (_, _, source, target, _, keep_key), mode in zip(cases, modes, strict=True)
            ]
            out.append(
                {
                    "phrase_gap_s": gap,
                    "move_margin": margin,
                    "phrases": sum(p.phrases for p in plans),
                    "phrases_moved": sum(p.phrases_moved for p in plans),
                    "plans_with_moves": sum(p.phrases_moved > 0 for p in plans),
                    "moved_share_mean": float(np.mean([p.moved_share for p in plans])),
                    "moved_share_max": float(max(p.moved_share for p in plans)),
                }
            )
    return out


def constants() -> dict[str, float]:
    from autovoice.pipeline.pitch_plan import MOVE_MARGIN, PHRASE_GAP_S, RETURN_MARGIN

    return {"phrase_gap_s": PHRASE_GAP_S, "move_margin": MOVE_MARGIN, "return_margin": RETURN_MARGIN}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "plans": len(rows),
        "not_as_expected": sum(r["content"] != r["expected_content"] for r in rows),
        "none_out_mean": float(np.mean([r["none_out"] for r in rows])),
    }
    for algo in ("old", "new"):
        m = [r[algo] for r in rows]
        out[algo] = {
            "moved_mean": float(np.mean([x["moved"] for x in m])),
            "moved_max": float(max(x["moved"] for x in m)),
            "plans_with_moves": sum(x["runs_moved"] > 0 for x in m),
            "median_cents_max": float(max(x["median_cents"] for x in m)),
            "median_cents_median": float(statistics.median(x["median_cents"] for x in m)),
            "plans_median_over_100c": sum(x["median_cents"] > 100 for x in m),
            "units_moved": sum(x["runs_moved"] for x in m),
            "jumps": sum(x["jumps"] for x in m),
            "out_mean": float(np.mean([x["out"] for x in m])),
        }
    out["new"]["phrases_moved"] = sum(r["new"]["phrases_moved"] for r in rows)
    out["new"]["phrases"] = sum(r["new"]["phrases"] for r in rows)
    return out


def table(doc: dict[str, Any]) -> str:
    c = doc["constants"]
    lines = [
        f"Phrase gap {c['phrase_gap_s']} s, move when a phrase's median is > {c['move_margin']} semitones "
        f"beyond the range, return within {c['return_margin']}. Moved = voiced frames > {MOVED_CENTS:.0f} "
        "cents off the source melody transposed by the global shift; jumps = octave leaps between "
        "consecutive voiced runs; out = voiced frames > 1 semitone outside the target's range.",
        "",
        "| group | plans | content not as expected | old: moved mean (max) | old: runs moved | old: jumps "
        "| old: median cents max | new: moved mean (max) | new: phrases moved | new: jumps "
        "| new: median cents max | out: none / old / new |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for g, s in doc["groups"].items():
        o, n = s["old"], s["new"]
        lines.append(
            f"| {g} | {s['plans']} | {s['not_as_expected']} | {o['moved_mean'] * 100:.1f}% "
            f"({o['moved_max'] * 100:.0f}%) | "
            f"{o['units_moved']} | {o['jumps']} | {o['median_cents_max']:.0f} | "
            f"{n['moved_mean'] * 100:.1f}% ({n['moved_max'] * 100:.0f}%) | {n['phrases_moved']} of "
            f"{n['phrases']} | {n['jumps']} | {n['median_cents_max']:.0f} | "
            f"{s['none_out_mean'] * 100:.1f} / {o['out_mean'] * 100:.1f} / {n['out_mean'] * 100:.1f}% |"
        )
    lines += [
        "",
        f"Other constants, over all {len(doc['rows'])} plans (return margin min(1, move margin)):",
        "",
        "| phrase gap | move margin | phrases moved | plans with moves | moved share mean (max) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for w in doc["sweep"]:
        lines.append(
            f"| {w['phrase_gap_s']} s | {w['move_margin']} | {w['phrases_moved']} of {w['phrases']} | "
            f"{w['plans_with_moves']} | {w['moved_share_mean'] * 100:.1f}% ({w['moved_share_max'] * 100:.0f}%) |"
        )
    lines += [
        "",
        "| plan | group | content (steady share) | shift | old: moved | old: runs moved | old: jumps "
        "| old: median c | new: moved | new: phrases moved | new: jumps | new: median c "
        "| out: none / old / new |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in doc["rows"]:
        o, n = r["old"], r["new"]
        lines.append(
            f"| {r['pair']} | {r['group']} | {r['content']} ({r['steady_share']:.2f}) | {r['shift']:+.1f} | "
            f"{o['moved'] * 100:.1f}% | "
            f"{o['runs_moved']}/{o['runs']} | {o['jumps']} | {o['median_cents']:.0f} | "
            f"{n['moved'] * 100:.1f}% | {n['phrases_moved']}/{n['phrases']} | {n['jumps']} | "
            f"{n['median_cents']:.0f} | {r['none_out'] * 100:.0f} / {o['out'] * 100:.0f} / "
            f"{n['out'] * 100:.0f}% |"
        )
    lines.append(f"\nAll plans in {doc['seconds']:.0f} s (FCPE tracking included).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
