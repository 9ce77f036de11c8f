"""The ``rvc`` engine: a profile's trained RVC v1/v2 (or Applio) model renders the vocal in that voice.

Per processing window (bounded memory; see :mod:`autovoice.engines.trained`): the vocal at 16 kHz,
high-passed at 48 Hz, goes through the content encoder the model was trained on (``hubert_base`` /
``contentvec``: layer 9 + projection for v1, layer 12 for v2); with an ``.index``, each frame moves
``index_rate`` of the way to its nearest training frames; features are repeated to 100 frames per second;
the planned F0 (AutoVoice's pitch plan: ``--pitch``/``--auto-key``) becomes RVC's coarse pitch index and
the NSF source; ``protect`` keeps unindexed features in unvoiced frames; the synthesizer renders at the
model's rate; ``rms_mix_rate`` mixes loudness envelopes; the result is resampled to the input's rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from autovoice.engines.base import Preset
from autovoice.engines.trained import (
    ENCODER_HOP,
    ENCODER_SR,
    TrainedEngine,
    check_inputs,
    file_key,
    median_filter_voiced,
    nearest_frames,
    resample_to,
    retrieve,
    rms_mix,
    run_windowed,
    to_length,
)
from autovoice.errors import ParameterError, package_missing
from autovoice.profiles.profile import ModelFiles, TrainedModelInfo, find_profile_model
from autovoice.progress import ProgressCallback, no_progress

if TYPE_CHECKING:
    from autovoice.analysis.f0 import F0Track
    from autovoice.engines.rvc.onnx_decoder import OnnxDecoder
    from autovoice.profiles.profile import VoiceProfile

#: RVC's frame rate: 10 ms frames (160 samples at 16 kHz).
FRAME_S = 0.01
FRAME_HOP = round(FRAME_S * ENCODER_SR)
#: RVC frames per content-encoder frame (each 20 ms feature is repeated for two 10 ms frames).
FRAMES_PER_FEATURE = ENCODER_HOP // FRAME_HOP
#: ``protect`` at this value (its maximum) keeps nothing: the indexed features are used everywhere.
PROTECT_OFF = 0.5
#: Which runtime renders the synthesizer: ``auto`` = ONNX Runtime on the CPU when ``onnx`` and
#: ``onnxruntime`` are installed (faster: ``bench/results/onnx_decoders.md``), PyTorch otherwise and on GPUs.
Decoder = Literal["auto", "torch", "onnx"]


class RvcOptions(BaseModel):
    """Options of the ``rvc`` engine, with the names RVC and Applio users know."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str | None = Field(
        default=None, description="Which of the profile's models (default: its RVC one)."
    )
    index_rate: float = Field(
        default=0.75, ge=0.0, le=1.0, description="Share of retrieved training features."
    )
    protect: float = Field(
        default=0.33, ge=0.0, le=PROTECT_OFF, description="Keep consonants/breaths unindexed (0.5 = off)."
    )
    filter_radius: int = Field(
        default=3, ge=0, le=7, description="Median filter of the F0 curve, frames (<3 off)."
    )
    rms_mix_rate: float = Field(
        default=0.25, ge=0.0, le=1.0, description="1 = model's loudness, 0 = follow the source's."
    )
    resample_sr: int = Field(
        default=0, ge=0, le=96000, description="Band-limit the output through this rate (0 = off)."
    )
    speaker_id: int = Field(default=0, ge=0, le=10000, description="Speaker slot of multi-speaker models.")
    seed: int = Field(
        default=0, ge=0, description="Seed of the model's random draws (same seed, same output)."
    )
    decoder: Decoder = Field(
        default="auto",
        description="Synthesizer runtime: 'onnx' (ONNX Runtime, CPU only, faster), 'torch', or 'auto' "
        "(ONNX Runtime on the CPU when installed).",
    )


class LoadedRvc:
    """A model, its index and its content encoder, ready to run (shared across conversions)."""

    def __init__(self, info: TrainedModelInfo, files: ModelFiles, device: str) -> None:
        import torch

        from autovoice.engines.indexes import read_index
        from autovoice.engines.rvc.model import build_rvc
        from autovoice.engines.rvc.onnx_decoder import DecoderSlot
        from autovoice.models.safe_load import load_checkpoint

        self.info = info
        self.device = device
        self.pth = files.pth
        self.onnx = DecoderSlot()
        self.net = build_rvc(load_checkpoint(files.pth), name=files.pth.name).to(device)
        self.index: Any = None
        self.big: np.ndarray | None = None
        if files.index is not None:
            self.index = read_index(files.index)
            self.big = np.asarray(self.index.reconstruct_n(0, self.index.ntotal), dtype=np.float32)
        self.torch = torch


def load_rvc_model(info: TrainedModelInfo, files: ModelFiles, device: str) -> LoadedRvc:
    """The loaded model for ``files`` on ``device``, built once per process (model cache)."""
    from autovoice.models.cache import CACHE

    key = "rvc:" + file_key(files.pth, files.index)
    return CACHE.get(key, device, lambda: LoadedRvc(info, files, device))


class RvcEngine(TrainedEngine[RvcOptions]):
    """Runs a profile's trained RVC v1/v2 model (see the module docstring)."""

    name: ClassVar[str] = "rvc"
    options_model: ClassVar[type[BaseModel]] = RvcOptions

    def convert(
        self,
        y: np.ndarray,
        *,
        sr: int,
        f0: F0Track,
        target_f0: np.ndarray,
        profile: VoiceProfile,
        preset: Preset | None = None,
        options: Mapping[str, Any] | None = None,
        progress: ProgressCallback = no_progress,
    ) -> np.ndarray:
        """The vocal ``y`` (mono float32 at ``sr``) in the profile's RVC model's voice, at the planned F0.

        Raises
        ------
        ParameterError
            ``model_not_found`` (the profile has no RVC model), ``invalid_engine_options``,
            ``invalid_parameter``; ``ModelUnavailableError`` ``model_unavailable`` when the model's content
            encoder is not installed (the message says how to add it), or ``decoder="onnx"`` without the
            ``onnx``/``onnxruntime`` packages (see :meth:`use_onnx`); both before any model loads.
        """
        from autovoice.models.hubert import load_encoder

        o = self.validate(options) if options is not None else self.options
        x, tgt = check_inputs(y, sr=sr, f0=f0, target_f0=target_f0)
        entry = find_profile_model(profile, o.model_id, "rvc")
        info = entry.info
        if info.speakers and o.speaker_id >= info.speakers:
            raise ParameterError(
                "invalid_engine_options",
                f"speaker_id {o.speaker_id} is outside this model's speakers (0..{info.speakers - 1}).",
                {"engine": "rvc", "errors": [{"option": "speaker_id", "msg": "out of range"}]},
            )
        on_onnx = self.use_onnx(o.decoder)  # a bad decoder choice fails before the models load
        encoder = load_encoder(info.embedder, self.device, settings=self.settings)
        model = load_rvc_model(info, entry.files, self.device)
        synth = self.synthesizer(model, on_onnx)
        tgt = median_filter_voiced(tgt, o.filter_radius)
        torch = model.torch

        def render(seg: np.ndarray, start: int) -> np.ndarray:
            f, padded_len = self.encode_window(seg, sr=sr, encoder=encoder, info=info, high_pass=True)
            p_len = padded_len // FRAME_HOP
            f0_frames = self.window_f0(tgt, f0, start=start, sr=sr, frame_s=FRAME_S, n_frames=p_len)
            indexed = f
            if model.index is not None and model.big is not None and o.index_rate > 0:
                indexed = retrieve(f, model.index, model.big, o.index_rate)
            # 50 -> 100 frames per second, then exactly p_len frames
            phone = nearest_frames(np.repeat(indexed, FRAMES_PER_FEATURE, axis=0), p_len)
            plain = nearest_frames(np.repeat(f, FRAMES_PER_FEATURE, axis=0), p_len)
            if info.f0 and o.protect < PROTECT_OFF:
                keep = np.where(f0_frames > 0, 1.0, o.protect)[:, None].astype(np.float32)
                phone = phone * keep + plain * (1 - keep)
            from autovoice.engines.rvc.model import f0_coarse

            with torch.no_grad():
                audio = synth.infer(
                    self.tensor(phone),
                    torch.from_numpy(f0_coarse(f0_frames))[None].to(self.device) if info.f0 else None,
                    self.tensor(f0_frames) if info.f0 else None,
                    torch.tensor([o.speaker_id], device=self.device),
                    **self.draws(model.net, p_len, seed=o.seed, start=start, source=info.f0),
                )
            out = self.unpad(audio, model_sr=info.sample_rate)
            if o.resample_sr and o.resample_sr != info.sample_rate:
                out = resample_to(out, orig_sr=info.sample_rate, target_sr=o.resample_sr)
                back = resample_to(out, orig_sr=o.resample_sr, target_sr=sr)
            else:
                back = resample_to(out, orig_sr=info.sample_rate, target_sr=sr)
            return to_length(back, len(seg))

        out = run_windowed(x, sr=sr, convert=render, progress=progress)
        out = rms_mix(x, out, sr=sr, rate=o.rms_mix_rate)
        return np.asarray(np.clip(out, -1.0, 1.0), dtype=np.float32)

    def synthesizer(self, model: LoadedRvc, on_onnx: bool) -> Any:
        """What renders ``model``'s windows: its :class:`~autovoice.engines.rvc.onnx_decoder.OnnxDecoder`
        when ``on_onnx`` (:meth:`use_onnx`), else the PyTorch network. A failed export falls back to
        PyTorch (one warning per model)."""
        if not on_onnx:
            return model.net
        onnx: OnnxDecoder | None = model.onnx.get(model.net, model.pth, settings=self.settings)
        return model.net if onnx is None else onnx

    def use_onnx(self, decoder: Decoder) -> bool:
        """Whether ``decoder`` renders with ONNX Runtime here: it allows it, the engine runs on the CPU and
        ``onnx``/``onnxruntime`` are installed.

        Raises
        ------
        ParameterError
            ``invalid_engine_options``: ``decoder="onnx"`` on a GPU.
        ModelUnavailableError
            ``model_unavailable``: ``decoder="onnx"`` without ``onnx``/``onnxruntime`` installed.
        """
        from autovoice.engines.rvc.onnx_decoder import missing_package

        if decoder == "torch":
            return False
        if self.device != "cpu":
            if decoder == "onnx":
                raise ParameterError(
                    "invalid_engine_options",
                    f"decoder 'onnx' runs ONNX Runtime on the CPU; this engine runs on {self.device}. Use "
                    "'auto' or 'torch'.",
                    {"engine": "rvc", "errors": [{"option": "decoder", "msg": "CPU only"}]},
                )
            return False
        missing = missing_package()
        if missing is not None and decoder == "onnx":
            err = package_missing(missing, "The rvc engine's decoder 'onnx'")
            err.details["option"] = "decoder"
            raise err
        return missing is None
