"""The ``sovits`` engine: a profile's trained so-vits-svc 4.0/4.1 model renders the vocal in that voice.

Per processing window: the vocal at 16 kHz goes through the speech encoder named in ``config.json``
(``vec768l12``: ContentVec layer 12; ``vec256l9``: layer 9 + projection); the features are repeated to the
model's frame rate (``hop_length`` samples at ``sampling_rate``); with a cluster model, ``cluster_ratio``
of each frame moves to its nearest cluster centre (k-means) or to its nearest training frames (a FAISS
feature index); the planned F0 is interpolated across unvoiced frames as so-vits-svc does (the
voiced/unvoiced flag goes in separately); ``noise_scale`` scales the prior sample; the result is
resampled to the input's rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from autovoice.engines.base import Preset
from autovoice.engines.trained import (
    ENCODER_SR,
    PAD_S,
    TrainedEngine,
    check_inputs,
    file_key,
    nearest_frames,
    resample_to,
    retrieve,
    run_windowed,
    to_length,
)
from autovoice.errors import ParameterError
from autovoice.profiles.profile import ModelFiles, TrainedModelInfo, find_profile_model
from autovoice.progress import ProgressCallback, no_progress

if TYPE_CHECKING:
    from autovoice.analysis.f0 import F0Track
    from autovoice.profiles.profile import VoiceProfile


class SovitsOptions(BaseModel):
    """Options of the ``sovits`` engine, with so-vits-svc's names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str | None = Field(
        default=None, description="Which of the profile's models (default: its so-vits one)."
    )
    speaker: str | None = Field(
        default=None, description="Speaker name (config.json 'spk') or id; default the first."
    )
    noise_scale: float = Field(
        default=0.4, ge=0.0, le=1.0, description="Scale of the prior sample (so-vits' noice_scale)."
    )
    cluster_ratio: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of cluster/retrieved features (needs a cluster file)."
    )
    seed: int = Field(default=0, ge=0, description="Seed of the model's random draws.")


class LoadedSovits:
    def __init__(self, info: TrainedModelInfo, files: ModelFiles, device: str) -> None:
        from autovoice.engines.indexes import load_kmeans, read_index
        from autovoice.engines.sovits.model import build_sovits
        from autovoice.models.safe_load import load_checkpoint, load_config

        assert files.config is not None
        self.info = info
        self.net = build_sovits(
            load_checkpoint(files.pth), load_config(files.config), name=files.pth.name
        ).to(device)
        self.kmeans: dict[str, Any] | None = None
        self.index: Any = None
        self.big: np.ndarray | None = None
        if files.cluster is not None:
            if files.cluster.suffix == ".index":
                self.index = read_index(files.cluster)
                self.big = np.asarray(self.index.reconstruct_n(0, self.index.ntotal), dtype=np.float32)
            else:
                self.kmeans = {k: v.numpy() for k, v in load_kmeans(files.cluster).items()}


def load_sovits_model(info: TrainedModelInfo, files: ModelFiles, device: str) -> LoadedSovits:
    from autovoice.models.cache import CACHE

    key = "sovits:" + file_key(files.pth, files.config, files.cluster)
    return CACHE.get(key, device, lambda: LoadedSovits(info, files, device))


def interpolate_unvoiced(f0: np.ndarray) -> np.ndarray:
    """so-vits-svc's ``interpolate_f0``: unvoiced frames take the line between their voiced neighbours."""
    voiced = f0 > 0
    if not voiced.any():
        return f0.copy()
    idx = np.arange(len(f0))
    return np.asarray(np.interp(idx, idx[voiced], f0[voiced]), dtype=np.float64)


class SovitsEngine(TrainedEngine[SovitsOptions]):
    """Runs a profile's trained so-vits-svc 4.x model (see the module docstring)."""

    name: ClassVar[str] = "sovits"
    options_model: ClassVar[type[BaseModel]] = SovitsOptions

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
        """The vocal in the profile's so-vits-svc model's voice, at the planned F0 (float32 at ``sr``)."""
        import torch

        from autovoice.models.hubert import load_encoder

        o = self.validate(options) if options is not None else self.options
        x, tgt = check_inputs(y, sr=sr, f0=f0, target_f0=target_f0)
        entry = find_profile_model(profile, o.model_id, "sovits")
        info = entry.info
        sid, spk_name = _speaker(info, o.speaker)
        encoder = load_encoder(info.embedder, self.device, settings=self.settings)
        model = load_sovits_model(info, entry.files, self.device)
        if o.cluster_ratio > 0 and model.kmeans is None and model.index is None:
            raise ParameterError(
                "invalid_engine_options",
                "cluster_ratio needs the model's cluster file (kmeans .pt or feature .index); there is none.",
                {"engine": "sovits", "errors": [{"option": "cluster_ratio", "msg": "no cluster file"}]},
            )
        hop = info.hop_length
        msr = info.sample_rate

        def render(seg: np.ndarray, start: int) -> np.ndarray:
            c, padded_len = self.encode_window(seg, sr=sr, encoder=encoder, info=info)
            n_frames = max(1, int(round(padded_len / ENCODER_SR * msr / hop)))
            if o.cluster_ratio > 0:
                c = _cluster(model, c, spk_name, o.cluster_ratio)
            c = nearest_frames(c, n_frames)
            f0_frames = self.window_f0(tgt, f0, start=start, sr=sr, frame_s=hop / msr, n_frames=n_frames)
            uv = (f0_frames > 0).astype(np.float32)
            f0_interp = interpolate_unvoiced(f0_frames).astype(np.float32)
            vol = None
            if model.net.vol_embedding:
                seg_m = resample_to(np.pad(seg, (int(PAD_S * sr),) * 2), orig_sr=sr, target_sr=msr)
                frames = to_length(seg_m, n_frames * hop).reshape(n_frames, hop)
                vol = self.tensor(np.sqrt(np.mean(frames**2, axis=1)))
            with torch.no_grad():
                audio = model.net.infer(
                    self.tensor(c.T),
                    self.tensor(f0_interp),
                    self.tensor(uv),
                    torch.tensor([sid], device=self.device),
                    noise_scale=o.noise_scale,
                    vol=vol,
                    **self.draws(model.net, n_frames, seed=o.seed, start=start),
                )
            out = self.unpad(audio, model_sr=msr)
            return to_length(resample_to(out, orig_sr=msr, target_sr=sr), len(seg))

        out = run_windowed(x, sr=sr, convert=render, progress=progress)
        return np.asarray(np.clip(out, -1.0, 1.0), dtype=np.float32)


def _speaker(info: TrainedModelInfo, speaker: str | None) -> tuple[int, str]:
    names = list(info.speaker_names)
    if speaker is None:
        return 0, names[0] if names else "0"
    if speaker in names:
        return names.index(speaker), speaker
    if speaker.isdigit() and int(speaker) < info.speakers:
        i = int(speaker)
        return i, names[i] if i < len(names) else speaker
    raise ParameterError(
        "invalid_engine_options",
        f"Unknown speaker '{speaker[:40]}'. Valid: {', '.join(names) or f'0..{info.speakers - 1}'}.",
        {"engine": "sovits", "errors": [{"option": "speaker", "msg": "unknown speaker"}], "valid": names},
    )


def _cluster(model: LoadedSovits, c: np.ndarray, speaker: str, ratio: float) -> np.ndarray:
    if model.index is not None and model.big is not None:
        return retrieve(c, model.index, model.big, ratio)
    assert model.kmeans is not None
    centres = model.kmeans.get(speaker)
    if centres is None:
        centres = next(iter(model.kmeans.values()))
    d = (c**2).sum(1)[:, None] - 2 * c @ centres.T + (centres**2).sum(1)[None]
    near = centres[np.argmin(d, axis=1)]
    return np.asarray(ratio * near + (1 - ratio) * c, dtype=np.float32)
