"""The parity cases: small configs with the real layer structure, fixed seeds, fixed inputs.

Shared by ``make_fixtures.py`` (runs the references) and ``test_parity.py`` (runs ours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from autovoice.engines.rvc.checkpoint import RVC_CONFIG_FIELDS
from autovoice.engines.rvc.model import RVCSynthesizer, f0_coarse
from autovoice.engines.sovits.checkpoint import sovits_config
from autovoice.engines.sovits.model import SovitsSynthesizer
from autovoice.engines.vits import unfold_weight_norm
from tests.engines.fakes import _randomise

FRAMES = 16
_SMALL = {"inter_channels": 8, "hidden_channels": 16, "filter_channels": 32, "n_heads": 2, "n_layers": 2,
          "kernel_size": 3, "resblock": "1", "resblock_kernel_sizes": [3, 5],
          "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]], "upsample_rates": [4, 4, 2],
          "upsample_initial_channel": 32, "upsample_kernel_sizes": [8, 8, 4], "gin_channels": 8}  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "rvc" | "sovits"
    version: str  # "v1" | "v2" | "4.0" | "4.1"
    f0: bool = True
    seed: int = 0

    @property
    def content_dim(self) -> int:
        return 256 if self.version in ("v1", "4.0") else 768

    def rvc_config_list(self) -> list[Any]:
        s = _SMALL
        return [1025, 32, s["inter_channels"], s["hidden_channels"], s["filter_channels"], s["n_heads"],
                s["n_layers"], s["kernel_size"], 0, s["resblock"], s["resblock_kernel_sizes"],
                s["resblock_dilation_sizes"], s["upsample_rates"], s["upsample_initial_channel"],
                s["upsample_kernel_sizes"], 3, s["gin_channels"], 48000]  # fmt: skip

    def sovits_model_config(self) -> dict[str, Any]:
        model = {**_SMALL, "ssl_dim": self.content_dim, "n_speakers": 3, "p_dropout": 0.1}
        if self.version == "4.1":
            model.update(
                speech_encoder="vec768l12", vocoder_name="nsf-hifigan", n_flow_layer=4, vol_embedding=False
            )
        m = sovits_config({"model": model, "data": {"sampling_rate": 44100, "hop_length": 32}})
        m["spec_channels"] = 1025
        return m


CASES = (
    Case("rvc-v1", "rvc", "v1", seed=1),
    Case("rvc-v2", "rvc", "v2", seed=2),
    Case("rvc-v2-nof0", "rvc", "v2", f0=False, seed=3),
    Case("sovits-4.0", "sovits", "4.0", seed=4),
    Case("sovits-4.1", "sovits", "4.1", seed=5),
)


def build_ours(case: Case) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """Our synthesizer with the case's random weights, and its state dict in the training layout."""
    torch.manual_seed(case.seed)
    model: torch.nn.Module
    if case.kind == "rvc":
        cfg = dict(zip(RVC_CONFIG_FIELDS, case.rvc_config_list(), strict=True))
        model = RVCSynthesizer(cfg, version=case.version, f0=case.f0)
    else:
        model = SovitsSynthesizer(case.sovits_model_config())
    _randomise(model, case.seed)
    return model.eval(), unfold_weight_norm(model)


def f0_curve(frames: int = FRAMES) -> np.ndarray:
    """A glide around 220 Hz with two unvoiced stretches, ``(1, frames)`` float32."""
    t = np.arange(frames)
    f0 = 220.0 * 2 ** (0.5 * np.sin(t / 3.0))
    f0[:2] = 0
    f0[9:11] = 0
    return f0[None].astype(np.float32)


def make_inputs(case: Case) -> dict[str, Any]:
    rng = np.random.default_rng(100 + case.seed)
    f0 = f0_curve()
    if case.kind == "rvc":
        return {
            "phone": rng.standard_normal((1, FRAMES, case.content_dim)).astype(np.float32),
            "pitch": f0_coarse(f0),
            "nsff0": f0,
            "sid": np.array([1], dtype=np.int64),
        }
    return {
        "c": rng.standard_normal((1, case.content_dim, FRAMES)).astype(np.float32),
        "f0": f0,
        "uv": (f0 > 0).astype(np.float32),
        "sid": np.array([1], dtype=np.int64),
        "noise_scale": np.float32(0.4),
    }


RMVPE_SEED = 11


def build_rmvpe() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """RMVPE's network with random weights and batch-norm statistics (fixed seed), eval mode."""
    from autovoice.analysis.rmvpe import E2E

    torch.manual_seed(RMVPE_SEED)
    model = E2E()
    _randomise(model, RMVPE_SEED)
    gen = torch.Generator().manual_seed(RMVPE_SEED + 1)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(0.1 * torch.randn(buf.shape, generator=gen))
            elif name.endswith("running_var"):
                buf.copy_(1 + 0.1 * torch.rand(buf.shape, generator=gen))
    return model.eval(), {k: v.detach().clone() for k, v in model.state_dict().items()}


def rmvpe_audio() -> np.ndarray:
    """0.5 s at 16 kHz: a 220 -> 330 Hz glide with harmonics, then noise."""
    t = np.arange(8000) / 16000
    f = 220 * (1.5 ** (t / 0.5))
    y = sum(0.2 / k * np.sin(2 * np.pi * k * np.cumsum(f) / 16000) for k in range(1, 6))
    y[6000:] = np.random.default_rng(0).standard_normal(2000) * 0.05
    return np.asarray(y, dtype=np.float32)
