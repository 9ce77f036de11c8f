"""RVC's synthesizers (``SynthesizerTrnMs256NSFsid`` v1 and ``SynthesizerTrnMs768NSFsid`` v2, with and without
F0) for inference, and their loader from an RVC/Applio ``.pth``.

Content features (256-d for v1, 768-d for v2, 100 frames per second) and a coarse pitch index go through
a relative-position transformer (``enc_p``) to a prior; a sample of it goes back through the flow
(``flow``) and the NSF-HiFi-GAN (``dec``) renders it with the speaker embedding (``emb_g``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import nn

from autovoice.engines.nsf import NSFHiFiGAN
from autovoice.engines.rvc.checkpoint import rvc_config
from autovoice.engines.vits import Encoder, ResidualCouplingBlock, fold_weight_norm, sequence_mask
from autovoice.errors import ParameterError

#: F0 range of RVC's coarse pitch index (``get_f0``: ``f0_min``/``f0_max``).
F0_MIN = 50.0
F0_MAX = 1100.0
#: RVC's prior temperature (``infer``: ``* 0.66666``).
PRIOR_SCALE = 0.66666


def f0_coarse(f0: np.ndarray) -> np.ndarray:
    """RVC's 1..255 pitch index of F0 in Hz (0 = unvoiced -> 1), on the mel scale between 50 and 1100 Hz."""
    mel_min = 1127 * np.log(1 + F0_MIN / 700)
    mel_max = 1127 * np.log(1 + F0_MAX / 700)
    mel = 1127 * np.log(1 + np.asarray(f0, dtype=np.float64) / 700)
    voiced = mel > 0
    mel[voiced] = (mel[voiced] - mel_min) * 254 / (mel_max - mel_min) + 1
    mel[mel <= 1] = 1
    mel[mel > 255] = 255
    return np.asarray(np.rint(mel), dtype=np.int64)


class TextEncoder(nn.Module):
    """``enc_p``: content features (+ pitch index) -> prior mean and log-std."""

    def __init__(
        self,
        content_dim: int,
        out_channels: int,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        *,
        f0: bool,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb_phone = nn.Linear(content_dim, hidden_channels)
        if f0:
            self.emb_pitch = nn.Embedding(256, hidden_channels)
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(
        self, phone: torch.Tensor, pitch: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.emb_phone(phone)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(self.hidden_channels), 0.1).transpose(1, -1)
        mask = sequence_mask(x.shape[2], like=x)
        x = self.encoder(x * mask, mask)
        m, logs = torch.split(self.proj(x) * mask, self.out_channels, dim=1)
        return m, logs, mask


class RVCSynthesizer(nn.Module):
    """An RVC v1/v2 synthesizer for inference (no ``enc_q``), built from the checkpoint's ``config``."""

    def __init__(self, cfg: Mapping[str, Any], *, version: str, f0: bool) -> None:
        super().__init__()
        self.version = version
        self.f0 = f0
        self.sr = int(cfg["sr"])
        inter = cfg["inter_channels"]
        self.enc_p = TextEncoder(
            256 if version == "v1" else 768,
            inter,
            cfg["hidden_channels"],
            cfg["filter_channels"],
            cfg["n_heads"],
            cfg["n_layers"],
            cfg["kernel_size"],
            f0=f0,
        )
        self.dec = NSFHiFiGAN(
            initial_channel=inter,
            resblock=cfg["resblock"],
            resblock_kernel_sizes=cfg["resblock_kernel_sizes"],
            resblock_dilation_sizes=cfg["resblock_dilation_sizes"],
            upsample_rates=cfg["upsample_rates"],
            upsample_initial_channel=cfg["upsample_initial_channel"],
            upsample_kernel_sizes=cfg["upsample_kernel_sizes"],
            gin_channels=cfg["gin_channels"],
            sr=self.sr,
            style="rvc",
            nsf=f0,
        )
        self.flow = ResidualCouplingBlock(
            inter, cfg["hidden_channels"], 5, 1, 3, gin_channels=cfg["gin_channels"]
        )
        self.emb_g = nn.Embedding(cfg["spk_embed_dim"], cfg["gin_channels"])

    @property
    def hop_length(self) -> int:
        return self.dec.upp

    def infer(
        self,
        phone: torch.Tensor,
        pitch: torch.Tensor | None,
        nsff0: torch.Tensor | None,
        sid: torch.Tensor,
        *,
        prior_noise: torch.Tensor | None = None,
        phase: torch.Tensor | None = None,
        source_noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        sines: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(batch, 1, frames * hop)`` audio.

        ``phone`` ``(batch, frames, content_dim)``; ``pitch`` ``(batch, frames)`` coarse index;
        ``nsff0`` ``(batch, frames)`` F0 in Hz; ``sid`` ``(batch,)`` speaker ids. The random draws (prior
        sample, NSF phase and noise) can be given; by default they come from ``generator``. ``sines``: the
        NSF excitation (``self.dec.excitation(nsff0, ...)``) computed beforehand, in place of ``nsff0``
        and the source's draws (the ONNX graph's input, :mod:`autovoice.engines.rvc.onnx_decoder`).
        """
        g = self.emb_g(sid).unsqueeze(-1)
        m, logs, mask = self.enc_p(phone, pitch if self.f0 else None)
        if prior_noise is None:
            prior_noise = torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
        z_p = (m + torch.exp(logs) * prior_noise * PRIOR_SCALE) * mask
        z = self.flow.reverse(z_p, mask, g=g)
        return self.dec(  # type: ignore[no-any-return]
            z * mask,
            nsff0 if self.f0 else None,
            g=g,
            phase=phase,
            noise=source_noise,
            generator=generator,
            sines=sines if self.f0 else None,
        )


def build_rvc(ckpt: Mapping[str, Any], *, name: str = "model") -> RVCSynthesizer:
    """The synthesizer of an RVC/Applio checkpoint (as :func:`~autovoice.models.safe_load.load_checkpoint`
    returns it), weights loaded, in eval mode on the CPU.

    Raises ``model_config_mismatch`` when the weights do not fit the checkpoint's own ``config``.
    """
    cfg = dict(rvc_config(ckpt, name))
    weights = ckpt["weight"]
    cfg["spk_embed_dim"] = int(weights["emb_g.weight"].shape[0])
    version = str(ckpt.get("version", "v1"))
    f0 = bool(int(ckpt.get("f0", 1)))
    state = {k: v for k, v in fold_weight_norm(weights).items() if not k.startswith("enc_q.")}
    with torch.device("meta"):
        model = RVCSynthesizer(cfg, version=version, f0=f0)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise ParameterError(
            "model_config_mismatch",
            f"{name}: the weights do not fit the model's config ({_first_problem(exc)}).",
            {"path": name, "reason": _first_problem(exc)},
        ) from None
    return model.eval()


def _first_problem(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[1] if len(lines) > 1 else lines[0] if lines else "")[:300]
