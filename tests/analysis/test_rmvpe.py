"""RMVPE against RVC's ``rmvpe.py`` (fixtures from ``tests/engines/parity/make_fixtures.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from autovoice.analysis import estimate_f0
from autovoice.analysis.rmvpe import decode, load_rmvpe_file, log_mel, mel_basis, salience
from autovoice.errors import AutoVoiceError
from tests.engines.parity.cases import build_rmvpe

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "parity" / "rmvpe.npz"


@pytest.fixture(scope="module")
def fx() -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURE))


def test_mel_front_end_matches_rvc(fx: dict[str, np.ndarray]) -> None:
    mel = log_mel(torch.from_numpy(fx["audio"])[None], torch.from_numpy(mel_basis()))[0].numpy()
    assert mel.shape == fx["mel"].shape
    # Compared on the linear scale: within 1e-4 of the level (1e-4 in log units, as before), plus a
    # floor of about one float32 epsilon of the frame's loudest band. The STFT is float32, so every bin
    # carries rounding noise of ~1e-8 of the frame's peak; a bin 1e-5 below its peak (log near -11,
    # next to the 1e-5 clamp) then differs by ~1e-3 in log units between FFT builds (this torch against
    # the one that wrote the fixture), while both agree with float64 to that noise. A wrong window,
    # filterbank or padding misses this tolerance by a factor of 200 or more.
    ours, ref = np.exp(mel.astype(np.float64)), np.exp(fx["mel"].astype(np.float64))
    peak = ref.max(axis=0, keepdims=True)
    assert np.all(np.abs(ours - ref) <= 1e-4 * ref + 1e-7 * peak)


def test_network_and_decoding_match_rvc(fx: dict[str, np.ndarray], tmp_path: Path) -> None:
    _, state = build_rmvpe()
    checksum = float(sum(float(v.double().sum()) for v in state.values()))
    assert checksum == pytest.approx(float(fx["weights_checksum"]), rel=1e-9)
    torch.save(state, tmp_path / "rmvpe.pt")  # the published file is a plain state dict
    loaded = load_rmvpe_file(tmp_path / "rmvpe.pt")
    with torch.no_grad():
        sal = salience(loaded, torch.from_numpy(fx["mel"])[None])[0].numpy()
    assert np.abs(sal - fx["salience"]).max() <= 1e-4
    assert np.allclose(decode(fx["salience"]), fx["f0"], rtol=1e-5)


def test_decoding_known_answers() -> None:
    sal = np.zeros((3, 360), np.float32)
    sal[0, 100] = 0.9  # one bin: its centre, 10 * 2 ** ((20 * 100 + 1997.38) / 1200) Hz
    sal[1, 100:102] = 0.5  # two equal bins: half-way
    assert decode(sal)[0] == pytest.approx(10 * 2 ** ((2000 + 1997.3794084376191) / 1200), rel=1e-6)
    assert decode(sal)[1] == pytest.approx(10 * 2 ** ((2010 + 1997.3794084376191) / 1200), rel=1e-6)
    assert decode(sal)[2] == 0  # nothing above the threshold: unvoiced


def test_rmvpe_without_weights_says_how_to_add_them() -> None:
    with pytest.raises(AutoVoiceError) as e:
        estimate_f0(np.zeros(16000, np.float32), sr=16000, method="rmvpe")
    assert e.value.code == "model_unavailable"
    assert "autovoice models add rmvpe" in e.value.message
