"""The VITS building blocks RVC and so-vits-svc share, with the parameter names their checkpoints use.

Inference only, no dropout. Convolutions that the training code wraps in ``weight_norm`` are
:class:`WNConv1d`/:class:`WNConvTranspose1d`: plain convolutions whose checkpoint weights arrive as
``weight_g``/``weight_v`` pairs and are folded into ``weight`` once, at load (:func:`fold_weight_norm`).
The module tree (and so every state-dict key) follows the reference implementations; the parity tests
under ``tests/engines/parity`` check outputs against them on random weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import nn

LRELU_SLOPE = 0.1


class WNConv1d(nn.Conv1d):
    """A ``Conv1d`` trained under weight normalisation (its checkpoint stores ``weight_g``/``weight_v``)."""


class WNConvTranspose1d(nn.ConvTranspose1d):
    """A ``ConvTranspose1d`` trained under weight normalisation."""


def fold_weight_norm(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A state dict with every ``X.weight_g``/``X.weight_v`` pair replaced by ``X.weight = g * v / |v|``.

    The norm is taken over every dimension but the first (``torch.nn.utils.weight_norm``'s ``dim=0``);
    everything is converted to float32.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            base = key[: -len("_v")]
            g = state[base + "_g"].float()
            v = value.float()
            norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.ndim - 1)))
            out[base] = g * v / norm
        else:
            out[key] = value.float() if value.is_floating_point() else value
    return out


def unfold_weight_norm(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as the training code stores it: ``weight_g``/``weight_v`` for weight-normed convs."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for name, module in model.named_modules():
        if isinstance(module, WNConv1d | WNConvTranspose1d):
            w = state.pop(f"{name}.weight")
            state[f"{name}.weight_g"] = w.flatten(1).norm(dim=1).view(-1, *([1] * (w.ndim - 1)))
            state[f"{name}.weight_v"] = w
    return state


def padding_for(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


class LayerNorm(nn.Module):
    """Layer norm over channels of a ``(batch, channels, time)`` tensor (``gamma``/``beta``)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.transpose(1, -1), (self.channels,), self.gamma, self.beta, self.eps)
        return x.transpose(1, -1)


class MultiHeadAttention(nn.Module):
    """Self-attention with learned relative-position keys and values within ``window_size`` frames."""

    def __init__(
        self, channels: int, out_channels: int, n_heads: int, *, window_size: int | None = None
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        if window_size is not None:
            std = self.k_channels**-0.5
            self.emb_rel_k = nn.Parameter(torch.randn(1, window_size * 2 + 1, self.k_channels) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(1, window_size * 2 + 1, self.k_channels) * std)

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, attn_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        q, k, v = self.conv_q(x), self.conv_k(c), self.conv_v(c)
        b, d, t_s = k.shape
        t_t = q.shape[2]
        q = q.view(b, self.n_heads, self.k_channels, t_t).transpose(2, 3)
        k = k.view(b, self.n_heads, self.k_channels, t_s).transpose(2, 3)
        v = v.view(b, self.n_heads, self.k_channels, t_s).transpose(2, 3)
        q = q / math.sqrt(self.k_channels)
        scores = torch.matmul(q, k.transpose(-2, -1))
        if self.window_size is not None:
            rel_k = self._relative_embeddings(self.emb_rel_k, t_s)
            rel_logits = torch.matmul(q, rel_k.unsqueeze(0).transpose(-2, -1))
            scores = scores + _relative_to_absolute(rel_logits)
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask == 0, -1e4)
        p_attn = F.softmax(scores, dim=-1)
        out = torch.matmul(p_attn, v)
        if self.window_size is not None:
            rel_v = self._relative_embeddings(self.emb_rel_v, t_s)
            out = out + torch.matmul(_absolute_to_relative(p_attn), rel_v.unsqueeze(0))
        out = out.transpose(2, 3).contiguous().view(b, d, t_t)
        return self.conv_o(out)  # type: ignore[no-any-return]

    def _relative_embeddings(self, emb: torch.Tensor, length: int) -> torch.Tensor:
        assert self.window_size is not None
        pad = max(length - (self.window_size + 1), 0)
        start = max((self.window_size + 1) - length, 0)
        if pad > 0:
            emb = F.pad(emb, (0, 0, pad, pad))
        return emb[:, start : start + 2 * length - 1]


def _relative_to_absolute(x: torch.Tensor) -> torch.Tensor:
    """``(b, h, l, 2l-1)`` relative logits -> ``(b, h, l, l)``."""
    b, h, length, _ = x.shape
    x = F.pad(x, (0, 1))
    x = F.pad(x.reshape(b, h, length * 2 * length), (0, length - 1))
    return x.view(b, h, length + 1, 2 * length - 1)[:, :, :length, length - 1 :]


def _absolute_to_relative(x: torch.Tensor) -> torch.Tensor:
    """``(b, h, l, l)`` weights -> ``(b, h, l, 2l-1)``."""
    b, h, length, _ = x.shape
    x = F.pad(x, (0, length - 1))
    x = F.pad(x.reshape(b, h, length**2 + length * (length - 1)), (length, 0))
    return x.view(b, h, length, 2 * length)[:, :, :, 1:]


class FFN(nn.Module):
    """Two convolutions with a ReLU between, "same" padding (or causal)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        filter_channels: int,
        kernel_size: int,
        *,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.causal = causal
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == 1:
            return x
        if self.causal:
            return F.pad(x, (self.kernel_size - 1, 0))
        return F.pad(x, ((self.kernel_size - 1) // 2, self.kernel_size // 2))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv_1(self._pad(x * x_mask)))
        return self.conv_2(self._pad(x * x_mask)) * x_mask  # type: ignore[no-any-return]


class Encoder(nn.Module):
    """The relative-position transformer encoder (``attn_layers``, ``norm_layers_1/2``, ``ffn_layers``)."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int = 1,
        window_size: int = 10,
    ) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden_channels, hidden_channels, n_heads, window_size=window_size)
            for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(hidden_channels, hidden_channels, filter_channels, kernel_size) for _ in range(n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for attn, norm1, ffn, norm2 in zip(
            self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2, strict=True
        ):
            x = norm1(x + attn(x, x, attn_mask))
            x = norm2(x + ffn(x, x_mask))
        return x * x_mask


class FFT(nn.Module):
    """so-vits-svc's F0 decoder body: causal self-attention (``self_attn_layers``, ``norm_layers_0``...).

    Only its parameters matter here (they are part of the checkpoint's layout); see :class:`F0Decoder`.
    """

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int = 1,
        kernel_size: int = 1,
    ) -> None:
        super().__init__()
        self.self_attn_layers = nn.ModuleList(
            MultiHeadAttention(hidden_channels, hidden_channels, n_heads) for _ in range(n_layers)
        )
        self.norm_layers_0 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            FFN(hidden_channels, hidden_channels, filter_channels, kernel_size, causal=True)
            for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))


class F0Decoder(nn.Module):
    """so-vits-svc's F0 predictor (``f0_decoder.*``): kept for the checkpoint layout, not run."""

    def __init__(
        self,
        hidden_channels: int,
        filter_channels: int,
        n_heads: int,
        n_layers: int,
        kernel_size: int,
        gin: int,
    ) -> None:
        super().__init__()
        self.prenet = nn.Conv1d(hidden_channels, hidden_channels, 3, padding=1)
        self.decoder = FFT(hidden_channels, filter_channels, n_heads, n_layers, kernel_size)
        self.proj = nn.Conv1d(hidden_channels, 1, 1)
        self.f0_prenet = nn.Conv1d(1, hidden_channels, 3, padding=1)
        self.cond = nn.Conv1d(gin, hidden_channels, 1)


class WN(nn.Module):
    """WaveNet-style gated dilated convolutions (``in_layers``, ``res_skip_layers``, ``cond_layer``)."""

    def __init__(
        self, hidden_channels: int, kernel_size: int, dilation_rate: int, n_layers: int, gin_channels: int = 0
    ) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.n_layers = n_layers
        if gin_channels:
            self.cond_layer = WNConv1d(gin_channels, 2 * hidden_channels * n_layers, 1)
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            dilation = dilation_rate**i
            self.in_layers.append(
                WNConv1d(
                    hidden_channels,
                    2 * hidden_channels,
                    kernel_size,
                    dilation=dilation,
                    padding=padding_for(kernel_size, dilation),
                )
            )
            out = 2 * hidden_channels if i < n_layers - 1 else hidden_channels
            self.res_skip_layers.append(WNConv1d(hidden_channels, out, 1))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        output = torch.zeros_like(x)
        h = self.hidden_channels
        cond = self.cond_layer(g) if g is not None else None
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            x_in = in_layer(x)
            if cond is not None:
                x_in = x_in + cond[:, i * 2 * h : (i + 1) * 2 * h, :]
            acts = torch.tanh(x_in[:, :h]) * torch.sigmoid(x_in[:, h:])
            rs = res_skip(acts)
            if i < self.n_layers - 1:
                x = (x + rs[:, :h]) * x_mask
                output = output + rs[:, h:]
            else:
                output = output + rs
        return output * x_mask


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: half the channels shift the other half (``pre``, ``enc``, ``post``)."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.half_channels = channels // 2
        self.pre = nn.Conv1d(self.half_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels)
        self.post = nn.Conv1d(hidden_channels, self.half_channels, 1)

    def reverse(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        x0, x1 = torch.split(x, [self.half_channels, self.half_channels], 1)
        h = self.enc(self.pre(x0) * x_mask, x_mask, g=g)
        m = self.post(h) * x_mask
        return torch.cat([x0, (x1 - m) * x_mask], 1)


class Flip(nn.Module):
    """Reverses the channel order between couplings (no parameters; keeps the ``flows.N`` numbering)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flip(x, [1])


class ResidualCouplingBlock(nn.Module):
    """``n_flows`` couplings, each followed by a :class:`Flip` (``flows.0``, ``flows.2``... hold weights)."""

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int,
        dilation_rate: int,
        n_layers: int,
        n_flows: int = 4,
        gin_channels: int = 0,
    ) -> None:
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(
                ResidualCouplingLayer(
                    channels, hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels
                )
            )
            self.flows.append(Flip())

    def reverse(self, x: torch.Tensor, x_mask: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        for flow in reversed(self.flows):
            x = flow(x) if isinstance(flow, Flip) else flow.reverse(x, x_mask, g)  # type: ignore[operator]
        return x


class PosteriorEncoder(nn.Module):
    """The training-time spectrogram encoder (``enc_q``): only so-vits checkpoints keep it; never run here."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, gin_channels: int) -> None:
        super().__init__()
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, 5, 1, 16, gin_channels)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)


class ResBlock1(nn.Module):
    """HiFi-GAN residual block type 1: three dilated convs, each followed by a plain one."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, 1, dilation=d, padding=padding_for(kernel_size, d))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, 1, dilation=1, padding=padding_for(kernel_size))
            for _ in dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            x = xt + x
        return x


class ResBlock2(nn.Module):
    """HiFi-GAN residual block type 2: two dilated convs."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            WNConv1d(channels, channels, kernel_size, 1, dilation=d, padding=padding_for(kernel_size, d))
            for d in dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c in self.convs:
            x = c(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


def sequence_mask(length: int, *, like: torch.Tensor) -> torch.Tensor:
    """``(1, 1, length)`` ones in ``like``'s dtype and device (one unpadded sequence)."""
    return torch.ones(1, 1, length, dtype=like.dtype, device=like.device)
