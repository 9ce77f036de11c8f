"""NSF-HiFi-GAN decoders: latent frames + F0 -> waveform, as RVC and so-vits-svc 4.x build them.

Both are HiFi-GAN generators whose every upsampling stage also receives a harmonic-plus-noise excitation
made from the F0 curve (neural source-filter). They differ in the details their checkpoints depend on:

RVC (``GeneratorNSF``)
    One harmonic; the phase is accumulated at frame rate and interpolated to sample rate; plain
    ``conv_pre``, a bias-free ``conv_post``; the speaker condition is optional.
so-vits-svc (``vdecoder.hifigan.models.Generator``)
    Nine harmonics with random initial phases; F0 is repeated to sample rate first; ``conv_pre`` and
    ``conv_post`` are weight-normed.

The random parts (initial phases, additive noise) are explicit arguments so that a caller can fix them;
by default they come from ``generator``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import nn

from autovoice.engines.vits import LRELU_SLOPE, ResBlock1, ResBlock2, WNConv1d, WNConvTranspose1d

SourceStyle = Literal["rvc", "sovits"]
SINE_AMP = 0.1
NOISE_STD = 0.003


def sine_excitation(
    f0: torch.Tensor,
    *,
    upp: int,
    sr: int,
    harmonics: int,
    style: SourceStyle,
    phase: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The sine-plus-noise excitation, ``(batch, frames * upp, harmonics)``.

    Parameters
    ----------
    f0
        ``(batch, frames)`` F0 in Hz per frame, 0 where unvoiced.
    upp
        Samples per frame.
    phase
        ``(batch, harmonics)`` initial phases in cycles (the fundamental's is forced to 0), default uniform.
    noise
        ``(batch, frames * upp, harmonics)`` standard normal noise, default drawn from ``generator``.
    """
    b, t = f0.shape
    n = t * upp
    if phase is None:
        phase = torch.rand(b, harmonics, generator=generator, device=f0.device)
    if noise is None:
        noise = torch.randn(b, n, harmonics, generator=generator, device=f0.device)
    phase = phase.clone()
    phase[:, 0] = 0
    mult = torch.arange(1, harmonics + 1, device=f0.device, dtype=f0.dtype)
    if style == "rvc":
        rad = (f0[:, :, None] * mult / sr) % 1  # (b, t, h)
        rad[:, 0, :] = rad[:, 0, :] + phase
        over = torch.cumsum(rad, 1) * upp
        over = F.interpolate(over.transpose(2, 1), scale_factor=upp, mode="linear", align_corners=True)
        over = over.transpose(2, 1) % 1
        rad = F.interpolate(rad.transpose(2, 1), scale_factor=upp, mode="nearest").transpose(2, 1)
        wrapped = (over[:, 1:, :] - over[:, :-1, :]) < 0
        uv = (f0 > 0).to(f0.dtype)[:, None, :]
        uv = F.interpolate(uv, scale_factor=upp, mode="nearest").transpose(2, 1)
    else:
        f0_up = f0.repeat_interleave(upp, dim=1)[:, :, None]  # nearest upsampling
        rad = (f0_up * mult / sr) % 1
        rad[:, 0, :] = rad[:, 0, :] + phase
        over = torch.cumsum(rad, 1) % 1
        wrapped = (over[:, 1:, :] - over[:, :-1, :]) < 0
        uv = (f0_up > 0).to(f0.dtype)
    shift = torch.zeros_like(rad)
    shift[:, 1:, :] = wrapped * -1.0
    sines = torch.sin(torch.cumsum(rad + shift, dim=1) * 2 * np.pi) * SINE_AMP
    noise_amp = uv * NOISE_STD + (1 - uv) * SINE_AMP / 3
    return sines * uv + noise_amp * noise


class SourceModuleHnNSF(nn.Module):
    """Merges the harmonics of :func:`sine_excitation` into one excitation (``l_linear``)."""

    def __init__(self, harmonics: int) -> None:
        super().__init__()
        self.l_linear = nn.Linear(harmonics, 1)

    def forward(self, sines: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.l_linear(sines))


class NSFHiFiGAN(nn.Module):
    """The NSF-HiFi-GAN generator (``dec.*`` in both tools' checkpoints)."""

    def __init__(
        self,
        *,
        initial_channel: int,
        resblock: str,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        upsample_rates: Sequence[int],
        upsample_initial_channel: int,
        upsample_kernel_sizes: Sequence[int],
        gin_channels: int,
        sr: int,
        style: SourceStyle,
        nsf: bool = True,
    ) -> None:
        super().__init__()
        self.nsf = nsf
        self.style: SourceStyle = style
        self.sr = sr
        self.harmonics = 1 if style == "rvc" else 9
        self.upp = math.prod(upsample_rates)
        self.num_kernels = len(resblock_kernel_sizes)
        if nsf:
            self.m_source = SourceModuleHnNSF(self.harmonics)
        conv_pre: type[nn.Conv1d] = nn.Conv1d if style == "rvc" else WNConv1d
        self.conv_pre = conv_pre(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        block = ResBlock1 if resblock == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = upsample_initial_channel
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes, strict=True)):
            ch = upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(WNConvTranspose1d(2 * ch, ch, k, u, padding=(k - u) // 2))
            if not nsf:
                pass
            elif i + 1 < len(upsample_rates):
                stride = math.prod(upsample_rates[i + 1 :])
                self.noise_convs.append(
                    nn.Conv1d(1, ch, kernel_size=stride * 2, stride=stride, padding=stride // 2)
                )
            else:
                self.noise_convs.append(nn.Conv1d(1, ch, kernel_size=1))
            for k_r, d_r in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True):
                self.resblocks.append(block(ch, k_r, d_r))
        if style == "rvc":
            self.conv_post: nn.Conv1d = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        else:
            self.conv_post = WNConv1d(ch, 1, 7, 1, padding=3)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def excitation(
        self,
        f0: torch.Tensor,
        *,
        phase: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """This decoder's :func:`sine_excitation` of ``f0`` ``(batch, frames)``: ``(batch, frames * upp,
        harmonics)``."""
        return sine_excitation(
            f0,
            upp=self.upp,
            sr=self.sr,
            harmonics=self.harmonics,
            style=self.style,
            phase=phase,
            noise=noise,
            generator=generator,
        )

    def forward(
        self,
        x: torch.Tensor,
        f0: torch.Tensor | None,
        g: torch.Tensor | None = None,
        *,
        phase: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        sines: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(batch, 1, frames * upp)`` audio in [-1, 1] from latent ``x`` ``(batch, ch, frames)`` and F0.

        ``f0`` is ``(batch, frames)`` in Hz (0 = unvoiced); ``None`` for a plain HiFi-GAN (``nsf=False``).
        ``sines``: the excitation (:meth:`excitation`) computed beforehand, in place of ``f0``; the rvc
        engine's ONNX graph takes it as an input (:mod:`autovoice.engines.rvc.onnx_decoder`).
        """
        source = None
        if self.nsf:
            if sines is None:
                assert f0 is not None
                sines = self.excitation(f0, phase=phase, noise=noise, generator=generator)
            source = self.m_source(sines).transpose(1, 2)
        x = self.conv_pre(x)
        if g is not None:
            x = x + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if source is not None:
                x = x + self.noise_convs[i](source)
            xs = self.resblocks[i * self.num_kernels](x)
            for j in range(1, self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))
