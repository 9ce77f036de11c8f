"""Our RVC v1/v2 and so-vits-svc 4.0/4.1 synthesizers against the reference implementations' outputs.

The fixtures were made by ``make_fixtures.py`` (RVC's ``infer_pack`` from ``infer-rvc-python`` 1.3.1 and
``so-vits-svc-fork`` 4.2.30's ``SynthesizerTrn``) with the same random weights, inputs and random draws.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from autovoice.engines.rvc.model import RVCSynthesizer, build_rvc
from autovoice.engines.sovits.model import SovitsSynthesizer
from autovoice.models.safe_load import load_checkpoint
from tests.engines.parity.cases import CASES, Case, build_ours

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "parity"
TOLERANCE = 1e-4


def _run(case: Case, model: torch.nn.Module, fx: dict[str, np.ndarray]) -> np.ndarray:
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in fx.items()}
    draws = {k: t[k] for k in ("prior_noise", "phase", "source_noise") if k in t}
    with torch.no_grad():
        if case.kind == "rvc":
            assert isinstance(model, RVCSynthesizer)
            out = model.infer(t["phone"], t["pitch"], t["nsff0"], t["sid"], **draws)
        else:
            assert isinstance(model, SovitsSynthesizer)
            out = model.infer(
                t["c"], t["f0"], t["uv"], t["sid"], noise_scale=float(fx["noise_scale"]), **draws
            )
    return out.numpy()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_synthesizer_matches_reference(case: Case) -> None:
    fx = dict(np.load(FIXTURES / f"{case.name}.npz"))
    model, state = build_ours(case)
    checksum = float(sum(float(v.double().sum()) for v in state.values()))
    assert checksum == pytest.approx(float(fx["weights_checksum"]), rel=1e-9), (
        "fixture weights not reproduced"
    )
    expected = fx["expected"]
    got = _run(case, model, fx)
    assert got.shape == expected.shape
    assert np.abs(expected).max() > 1e-3  # a real signal, not silence on both sides
    assert np.abs(got - expected).max() <= TOLERANCE


def test_rvc_checkpoint_round_trip_matches_reference(tmp_path: Path) -> None:
    """The v2 case through the real file path: fp32 ``.pth`` in RVC's layout -> loader -> same output."""
    case = next(c for c in CASES if c.name == "rvc-v2")
    _, state = build_ours(case)
    ckpt = {
        "weight": state,
        "config": case.rvc_config_list(),
        "info": "1epoch",
        "sr": "48k",
        "f0": 1,
        "version": "v2",
    }
    torch.save(ckpt, tmp_path / "m.pth")
    model = build_rvc(load_checkpoint(tmp_path / "m.pth"))
    fx = dict(np.load(FIXTURES / f"{case.name}.npz"))
    assert np.abs(_run(case, model, fx) - fx["expected"]).max() <= TOLERANCE


def test_draws_change_the_output() -> None:
    """The comparison is sensitive: other noise gives a different waveform."""
    case = next(c for c in CASES if c.name == "sovits-4.1")
    fx = dict(np.load(FIXTURES / f"{case.name}.npz"))
    fx["source_noise"] = np.roll(fx["source_noise"], 7, axis=1)
    model, _ = build_ours(case)
    assert np.abs(_run(case, model, fx) - fx["expected"]).max() > 10 * TOLERANCE
