"""Shared helpers for the benchmark scripts: result files and the machine they ran on."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SHARED = REPO.parent / "shared" / "data"
SPEECH = SHARED / "speech" / "librispeech"
SONG = SHARED / "song" / "karissa_hobbs-lets_go_fishin.ogg"
FEMALE = ("367", "533", "1998", "3080", "3331")
MALE = ("1688", "2033", "2414", "2609", "3005")
SPEAKERS = FEMALE + MALE


def utterances(speaker: str) -> list[Path]:
    """A LibriSpeech speaker's utterances in ``../shared/data``, in name order."""
    return sorted((SPEECH / speaker).glob("*.flac"))


def pairs(n: int = 20) -> list[tuple[str, str, int]]:
    """(source speaker, target speaker, source utterance index): for each target one source of the
    same sex and one of the other, held-out utterances 5-8."""
    out = []
    for i, tgt in enumerate(SPEAKERS):
        same = FEMALE if tgt in FEMALE else MALE
        other = MALE if tgt in FEMALE else FEMALE
        same_src = [s for s in same if s != tgt][i % 4]
        cross_src = other[i % 5]
        out += [(same_src, tgt, 5 + i % 4), (cross_src, tgt, 5 + (i + 1) % 4)]
    return out[:n]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


def write_results(name: str, doc: dict[str, Any], table: str) -> None:
    """Write ``bench/results/<name>.json`` and ``<name>.md`` and print the table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"machine": machine(), **doc}
    (RESULTS / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = (
        f"# {name}\n\nMeasured {doc['machine']['date']} at {doc['machine']['commit']} on "
        f"{doc['machine']['cores']} cores ({doc['machine']['cuda'] or 'CPU only'}).\n\n{table}\n"
    )
    (RESULTS / f"{name}.md").write_text(md)
    print(md)
