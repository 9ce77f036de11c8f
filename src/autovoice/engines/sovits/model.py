"""so-vits-svc 4.0/4.1's ``SynthesizerTrn`` for inference, and its loader from ``G_*.pth`` + ``config.json``.

Content features (``ssl_dim`` wide, one frame per ``hop_length`` output samples) go through ``pre``, gain the
voiced/unvoiced embedding (``emb_uv``, and the loudness one ``emb_vol`` when the model has it), a coarse
pitch embedding and a relative-position transformer (``enc_p``); a sample of the prior, scaled by
``noise_scale``, goes back through the flow and the 9-harmonic NSF-HiFi-GAN (``dec``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from autovoice.engines.nsf import NSFHiFiGAN
from autovoice.engines.sovits.checkpoint import sovits_config
from autovoice.engines.vits import (
    Encoder,
    F0Decoder,
    PosteriorEncoder,
    ResidualCouplingBlock,
    fold_weight_norm,
    sequence_mask,
)
from autovoice.errors import ParameterError

F0_BIN = 256
F0_MIN = 50.0
F0_MAX = 1100.0


def f0_to_coarse(f0: torch.Tensor) -> torch.Tensor:
    """so-vits-svc's 1..255 pitch index of F0 in Hz (mel scale between 50 and 1100 Hz)."""
    mel_min = 1127 * torch.log(torch.tensor(1 + F0_MIN / 700, dtype=torch.float64))
    mel_max = 1127 * torch.log(torch.tensor(1 + F0_MAX / 700, dtype=torch.float64))
    mel = 1127 * (1 + f0 / 700).log()
    voiced = mel > 0
    mel = torch.where(voiced, (mel - mel_min.float()) * (F0_BIN - 2) / (mel_max - mel_min).float() + 1, mel)
    mel = mel.clamp(1, F0_BIN - 1)
    return (mel + 0.5).long()


class TextEncoder(nn.Module):
    """``enc_p``: hidden features + pitch index -> a prior sample."""

    def __init__(
        self,
        out_channels: int,
        hidden_channels: int,
        kernel_size: int,
        n_layers: int,
        filter_channels: int,
        n_heads: int,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)
        self.f0_emb = nn.Embedding(256, hidden_channels)
        self.enc_ = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, window_size=4)

    def forward(
        self,
        x: torch.Tensor,
        x_mask: torch.Tensor,
        f0: torch.Tensor,
        noise: torch.Tensor | None,
        noise_scale: float,
    ) -> torch.Tensor:
        x = x + self.f0_emb(f0).transpose(1, 2)
        x = self.enc_(x * x_mask, x_mask)
        m, logs = torch.split(self.proj(x) * x_mask, self.out_channels, dim=1)
        assert noise is not None
        return (m + noise * torch.exp(logs) * noise_scale) * x_mask


class SovitsSynthesizer(nn.Module):
    """so-vits-svc 4.x ``SynthesizerTrn`` (nsf-hifigan decoder, residual-coupling flow)."""

    def __init__(self, m: Mapping[str, Any]) -> None:
        super().__init__()
        hidden = m["hidden_channels"]
        inter = m["inter_channels"]
        gin = m["gin_channels"]
        self.sr = int(m["sampling_rate"])
        self.vol_embedding = bool(m.get("vol_embedding", False))
        self.emb_g = nn.Embedding(m["n_speakers"], gin)
        if self.vol_embedding:
            self.emb_vol = nn.Linear(1, hidden)
        self.pre = nn.Conv1d(m["ssl_dim"], hidden, kernel_size=5, padding=2)
        self.enc_p = TextEncoder(
            inter, hidden, m["kernel_size"], m["n_layers"], m["filter_channels"], m["n_heads"]
        )
        self.dec = NSFHiFiGAN(
            initial_channel=inter,
            resblock=str(m["resblock"]),
            resblock_kernel_sizes=m["resblock_kernel_sizes"],
            resblock_dilation_sizes=m["resblock_dilation_sizes"],
            upsample_rates=m["upsample_rates"],
            upsample_initial_channel=m["upsample_initial_channel"],
            upsample_kernel_sizes=m["upsample_kernel_sizes"],
            gin_channels=gin,
            sr=self.sr,
            style="sovits",
        )
        spec_channels = m.get("spec_channels") or (m.get("filter_length", 2048) // 2 + 1)
        self.enc_q = PosteriorEncoder(int(spec_channels), inter, hidden, gin)
        self.flow = ResidualCouplingBlock(
            inter, hidden, 5, 1, 4, n_flows=int(m.get("n_flow_layer", 4)), gin_channels=gin
        )
        if m.get("use_automatic_f0_prediction", True):
            self.f0_decoder = F0Decoder(
                hidden, m["filter_channels"], m["n_heads"], m["n_layers"], m["kernel_size"], gin
            )
        self.emb_uv = nn.Embedding(2, hidden)

    @property
    def hop_length(self) -> int:
        return self.dec.upp

    def infer(
        self,
        c: torch.Tensor,
        f0: torch.Tensor,
        uv: torch.Tensor,
        sid: torch.Tensor,
        *,
        noise_scale: float = 0.4,
        vol: torch.Tensor | None = None,
        prior_noise: torch.Tensor | None = None,
        phase: torch.Tensor | None = None,
        source_noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``(batch, 1, frames * hop)`` audio.

        ``c`` ``(batch, ssl_dim, frames)`` content features; ``f0`` ``(batch, frames)`` Hz; ``uv``
        ``(batch, frames)`` 1 = voiced; ``sid`` ``(batch,)``; ``vol`` ``(batch, frames)`` loudness for
        models with ``vol_embedding``.
        """
        g = self.emb_g(sid).unsqueeze(-1)
        x_mask = sequence_mask(c.shape[2], like=c)
        x = self.pre(c) * x_mask + self.emb_uv(uv.long()).transpose(1, 2)
        if self.vol_embedding and vol is not None:
            x = x + self.emb_vol(vol[:, :, None]).transpose(1, 2)
        if prior_noise is None:
            shape = (c.shape[0], self.enc_p.out_channels, c.shape[2])
            prior_noise = torch.randn(shape, generator=generator, device=c.device, dtype=c.dtype)
        z_p = self.enc_p(x, x_mask, f0_to_coarse(f0), prior_noise, noise_scale)
        z = self.flow.reverse(z_p, x_mask, g=g)
        return self.dec(  # type: ignore[no-any-return]
            z * x_mask, f0, g=g, phase=phase, noise=source_noise, generator=generator
        )


def build_sovits(
    ckpt: Mapping[str, Any], config: Mapping[str, Any], *, name: str = "model"
) -> SovitsSynthesizer:
    """The synthesizer of a so-vits-svc ``G_*.pth`` (as ``load_checkpoint`` returns it) and its config,
    weights loaded, eval mode, CPU. ``model_config_mismatch`` when weights and config disagree."""
    m = sovits_config(config, "config.json")
    m["filter_length"] = config["data"].get("filter_length", 2048)
    state = fold_weight_norm(ckpt["model"])
    if "enc_q.pre.weight" in state:
        m["spec_channels"] = int(state["enc_q.pre.weight"].shape[1])
    m["use_automatic_f0_prediction"] = any(k.startswith("f0_decoder.") for k in state)
    with torch.device("meta"):
        model = SovitsSynthesizer(m)
    missing_q = {k for k in model.state_dict() if k.startswith("enc_q.")} - set(state)
    if missing_q == {k for k in model.state_dict() if k.startswith("enc_q.")}:
        del model.enc_q  # pruned checkpoints (so-vits' compress_model) drop the training-only encoder
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        reason = (lines[1] if len(lines) > 1 else lines[0] if lines else "")[:300]
        raise ParameterError(
            "model_config_mismatch",
            f"{name}: the weights do not fit config.json ({reason}).",
            {"path": name, "reason": reason},
        ) from None
    return model.eval()
