"""FCPE with its convolutions swapped for faster equivalents gives the same F0 as the package's model."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from autovoice.models.fcpe import ChannelsLastConv, PointwiseConv, speed_up_convolutions
from tests.support import melody, voice_like

SR = 16_000


def _f0(model: torch.nn.Module, y: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = model.infer(  # type: ignore[operator]
            torch.from_numpy(y).float()[None, :, None], sr=SR, decoder_mode="local_argmax", threshold=0.006
        )
    return np.asarray(out[0, :, 0].numpy())


@pytest.mark.parametrize("seconds", [0.18, 3.0])
def test_swapped_model_gives_the_same_f0(seconds: float) -> None:
    """A live window (180 ms) and a phrase: the swapped model's F0 equals the original's within 1e-3 Hz
    (the same weights, other kernels: only float rounding differs), and it is voiced where it should be."""
    from torchfcpe import spawn_bundled_infer_model

    with contextlib.redirect_stdout(io.StringIO()):
        original = spawn_bundled_infer_model(device="cpu")
        fast = spawn_bundled_infer_model(device="cpu")
    assert speed_up_convolutions(fast) == 20  # 2 input convolutions + 3 in each of 6 conformer layers
    kinds = {type(m) for m in fast.modules()}
    assert {PointwiseConv, ChannelsLastConv} <= kinds
    assert torch.nn.Conv1d not in kinds
    y = (0.4 * voice_like(melody(seconds, sr=SR, notes=(180.0, 220.0)), sr=SR, seed=2)).astype(np.float32)
    a, b = _f0(original, y), _f0(fast, y)
    assert a.shape == b.shape
    assert (a > 0).mean() > 0.5
    np.testing.assert_allclose(b, a, atol=1e-3)


def test_each_replacement_equals_its_convolution() -> None:
    """Kernel 1, kernel 3 and depthwise kernel 31 (the shapes FCPE has), with and without bias."""
    torch.manual_seed(0)
    x = torch.randn(2, 64, 23)
    for conv in (
        torch.nn.Conv1d(64, 96, 1),
        torch.nn.Conv1d(64, 32, 3, padding=1),
        torch.nn.Conv1d(64, 64, 31, padding=15, groups=64),
        torch.nn.Conv1d(64, 64, 5, padding=2, bias=False),
    ):
        wrapper = torch.nn.Sequential(conv)
        with torch.no_grad():
            want = conv(x)
            assert speed_up_convolutions(wrapper) == 1
            np.testing.assert_allclose(wrapper(x).numpy(), want.numpy(), atol=1e-5)


def test_int8_copy_keeps_the_pitch_and_leaves_the_original_alone() -> None:
    """The live tracker's int8 copy: the 12 pointwise convolutions become int8, the float model is not
    touched, and on a sung melody the F0 is within a few cents of the float model's where both are
    voiced, with the same voicing on nearly every frame (a live window, 180 ms, and a phrase)."""
    from torchfcpe import spawn_bundled_infer_model

    from autovoice.models.fcpe import Int8PointwiseConv, int8_available, int8_copy

    if not int8_available():
        pytest.skip("this torch build has no quantized CPU backend")
    with contextlib.redirect_stdout(io.StringIO()):
        model = spawn_bundled_infer_model(device="cpu")
    speed_up_convolutions(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small = int8_copy(model)
    assert sum(isinstance(m, Int8PointwiseConv) for m in small.modules()) == 12
    assert not any(isinstance(m, PointwiseConv) for m in small.modules())
    assert sum(isinstance(m, PointwiseConv) for m in model.modules()) == 12
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    for seconds in (0.18, 3.0):
        y = (0.4 * voice_like(melody(seconds, sr=SR, notes=(180.0, 220.0)), sr=SR, seed=2)).astype(np.float32)
        a, b = _f0(model, y), _f0(small, y)
        assert a.shape == b.shape
        both = (a > 0) & (b > 0)
        assert both.mean() > 0.5
        assert ((a > 0) == (b > 0)).mean() >= 0.9
        assert np.median(np.abs(1200 * np.log2(b[both] / a[both]))) < 5
