"""RMVPE (Wei et al., 2023), the pitch tracker RVC recommends, from the user's ``rmvpe.pt``.

The network (``E2E``: a deep U-Net over a 128-band log-mel spectrogram, a bidirectional GRU and 360 pitch
classes of 20 cents) is rebuilt here with the parameter names of RVC's ``rmvpe.py``, so the published
``rmvpe.pt`` (a plain state dict) loads as it is, with ``weights_only``. Decoding is RVC's: the salience-
weighted mean of the 9 bins around the peak, unvoiced below a salience of 0.03. Its weights are not on
the registries: ``autovoice models add rmvpe PATH`` (or ``autovoice models download rmvpe``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import nn

from autovoice.errors import ParameterError

SR = 16000
HOP = 160
N_FFT = 1024
N_MELS = 128
FMIN, FMAX = 30.0, 8000.0
THRESHOLD = 0.03
CENTS = 20 * np.arange(360) + 1997.3794084376191


class ConvBlockRes(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, (3, 3), padding=(1, 1), bias=False),
            nn.BatchNorm2d(cout, momentum=0.01),
            nn.ReLU(),
            nn.Conv2d(cout, cout, (3, 3), padding=(1, 1), bias=False),
            nn.BatchNorm2d(cout, momentum=0.01),
            nn.ReLU(),
        )
        self.shortcut = nn.Conv2d(cin, cout, (1, 1)) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + (self.shortcut(x) if self.shortcut is not None else x)  # type: ignore[no-any-return]


class ResEncoderBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: tuple[int, int] | None, n_blocks: int) -> None:
        super().__init__()
        self.conv = nn.ModuleList(
            [ConvBlockRes(cin, cout), *(ConvBlockRes(cout, cout) for _ in range(n_blocks - 1))]
        )
        self.pool = nn.AvgPool2d(kernel_size=kernel) if kernel is not None else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for c in self.conv:
            x = c(x)
        return x, (self.pool(x) if self.pool is not None else x)


class ResDecoderBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: tuple[int, int], n_blocks: int) -> None:
        super().__init__()
        out_pad = (0, 1) if stride == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, (3, 3), stride, (1, 1), out_pad, bias=False),
            nn.BatchNorm2d(cout, momentum=0.01),
            nn.ReLU(),
        )
        self.conv2 = nn.ModuleList(
            [ConvBlockRes(cout * 2, cout), *(ConvBlockRes(cout, cout) for _ in range(n_blocks - 1))]
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat((self.conv1(x), skip), dim=1)
        for c in self.conv2:
            x = c(x)
        return x


class _Encoder(nn.Module):
    def __init__(self, cin: int, n: int, kernel: tuple[int, int], n_blocks: int, cout: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(cin, momentum=0.01)
        self.layers = nn.ModuleList()
        for _ in range(n):
            self.layers.append(ResEncoderBlock(cin, cout, kernel, n_blocks))
            cin, cout = cout, cout * 2
        self.out_channel = cout


class _Intermediate(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, n_blocks: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                ResEncoderBlock(cin, cout, None, n_blocks),
                *(ResEncoderBlock(cout, cout, None, n_blocks) for _ in range(n - 1)),
            ]
        )


class _Decoder(nn.Module):
    def __init__(self, cin: int, n: int, stride: tuple[int, int], n_blocks: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(n):
            self.layers.append(ResDecoderBlock(cin, cin // 2, stride, n_blocks))
            cin //= 2


class DeepUnet(nn.Module):
    def __init__(self, kernel: tuple[int, int], n_blocks: int, layers: int = 5, inter: int = 4) -> None:
        super().__init__()
        self.encoder = _Encoder(1, layers, kernel, n_blocks, 16)
        self.intermediate = _Intermediate(
            self.encoder.out_channel // 2, self.encoder.out_channel, inter, n_blocks
        )
        self.decoder = _Decoder(self.encoder.out_channel, layers, kernel, n_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder.bn(x)
        skips = []
        for layer in self.encoder.layers:
            skip, x = layer(x)
            skips.append(skip)
        for layer in self.intermediate.layers:
            x, _ = layer(x)
        for i, layer in enumerate(self.decoder.layers):
            x = layer(x, skips[-1 - i])
        return x


class BiGRU(nn.Module):
    def __init__(self, n_in: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(n_in, hidden, num_layers=layers, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]  # type: ignore[no-any-return]


class E2E(nn.Module):
    """RMVPE's network: ``(batch, n_mels, frames)`` log-mel -> ``(batch, frames, 360)`` salience."""

    def __init__(self, n_blocks: int = 4, n_gru: int = 1, kernel: tuple[int, int] = (2, 2)) -> None:
        super().__init__()
        self.unet = DeepUnet(kernel, n_blocks)
        self.cnn = nn.Conv2d(16, 3, (3, 3), padding=(1, 1))
        self.fc = nn.Sequential(
            BiGRU(3 * N_MELS, 256, n_gru), nn.Linear(512, 360), nn.Dropout(0.25), nn.Sigmoid()
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.cnn(self.unet(mel.transpose(-1, -2).unsqueeze(1))).transpose(1, 2).flatten(-2)
        return self.fc(x)  # type: ignore[no-any-return]


def mel_basis() -> np.ndarray:
    """RVC's filterbank: 128 HTK-mel bands from 30 to 8000 Hz, Slaney area-normalised (librosa's)."""
    import librosa.filters

    return np.asarray(
        librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX, htk=True),
        dtype=np.float32,
    )


def log_mel(audio16k: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``(batch, 128, frames)`` log-mel of 16 kHz audio ``(batch, samples)``, 10 ms hop, centred frames."""
    spec = torch.stft(
        audio16k,
        n_fft=N_FFT,
        hop_length=HOP,
        win_length=N_FFT,
        window=torch.hann_window(N_FFT, device=audio16k.device),
        center=True,
        return_complex=True,
    )
    magnitude = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2))
    return torch.log(torch.clamp(torch.matmul(basis, magnitude), min=1e-5))


def salience(model: E2E, mel: torch.Tensor) -> torch.Tensor:
    """The network's ``(batch, frames, 360)`` output, frames padded to a multiple of 32 as RVC does."""
    n = mel.shape[-1]
    mel = F.pad(mel, (0, 32 * ((n - 1) // 32 + 1) - n), mode="reflect")
    out: torch.Tensor = model(mel)
    return out[:, :n]


def decode(sal: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """F0 in Hz per frame from ``(frames, 360)`` salience (0 where the peak is at most ``threshold``)."""
    centre = np.argmax(sal, axis=1)
    padded = np.pad(sal, ((0, 0), (4, 4)))
    cents = np.pad(CENTS, (4, 4))
    idx = centre[:, None] + np.arange(9)[None]
    s = np.take_along_axis(padded, idx, axis=1)
    c = cents[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.sum(s * c, 1) / np.sum(s, 1)
    mean[np.max(padded, axis=1) <= threshold] = 0
    f0 = 10 * 2 ** (mean / 1200)
    f0[f0 == 10] = 0
    return np.asarray(np.nan_to_num(f0), dtype=np.float32)


def load_rmvpe_file(path: str | Path) -> E2E:
    """RMVPE with the weights of ``rmvpe.pt`` (read with ``weights_only``), eval mode, CPU; also the check
    ``autovoice models add rmvpe PATH`` passes to :func:`autovoice.models.local.add_local`."""
    from autovoice.models.safe_load import load_checkpoint

    p = Path(path)
    state = load_checkpoint(p)
    model = E2E()
    try:
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True
        )
    except (RuntimeError, AttributeError) as exc:
        raise ParameterError(
            "invalid_checkpoint",
            f"{p.name} is not RMVPE's rmvpe.pt ({str(exc).splitlines()[0][:200]}).",
            {"path": p.name},
        ) from None
    return model.eval()


def load_rmvpe(device: str) -> Any:
    """RMVPE on ``device`` from the user's ``rmvpe.pt`` (added copy or registry file), once per process."""
    from autovoice.errors import ModelUnavailableError
    from autovoice.models.cache import CACHE
    from autovoice.models.local import local_source, not_installed
    from autovoice.models.weights import ensure_weights

    src = local_source("rmvpe")
    if src is None:
        try:
            src = ensure_weights("rmvpe")
        except ModelUnavailableError as exc:
            if exc.code != "model_unavailable":
                raise
            raise not_installed("rmvpe", needed_by="The rmvpe F0 method") from None
    path = src

    def factory() -> tuple[E2E, torch.Tensor]:
        return load_rmvpe_file(path).to(device), torch.from_numpy(mel_basis()).to(device)

    return CACHE.get(f"rmvpe:{path}", device, factory)


def rmvpe_f0(
    model: E2E, basis: torch.Tensor, audio16k: np.ndarray, *, threshold: float = THRESHOLD
) -> np.ndarray:
    """F0 per 10 ms frame (frame ``i`` centred at sample ``160 i``) of 16 kHz mono audio."""
    device = basis.device
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(audio16k, dtype=np.float32))[None].to(device)
        sal = salience(model, log_mel(x, basis))[0].float().cpu().numpy()
    return decode(sal, threshold)


def f0_rmvpe(
    y: np.ndarray, *, sr: int, n_frames: int, hop_s: float, fmin: float, fmax: float, device: str
) -> np.ndarray:
    """F0 by RMVPE in 30 s windows (the :data:`~autovoice.analysis.f0.F0_METHODS` signature); needs
    ``rmvpe.pt`` (``model_unavailable`` says how to add it). :func:`estimate_f0` applies ``fmin``/``fmax``."""
    from autovoice.analysis.f0 import _regrid, _windowed
    from autovoice.audio import resample

    model, basis = load_rmvpe(device)
    x = np.asarray(resample(y, orig_sr=sr, target_sr=SR), dtype=np.float32)
    return _regrid(
        _windowed(x, lambda seg: rmvpe_f0(model, basis, seg)),
        native_hop_s=HOP / SR,
        hop_s=hop_s,
        n_frames=n_frames,
    )
