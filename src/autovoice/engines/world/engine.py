"""The ``world`` engine (:class:`WorldEngine`) and what the engines built on it share
(:class:`WorldFamilyEngine`: the conversion pipeline, with hooks for the mapping step)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

import numpy as np

from autovoice.config import Settings
from autovoice.engines.base import Preset
from autovoice.engines.world.dsp import (
    analyse,
    apply_gains,
    check_audio,
    check_track,
    n_frames,
    psola,
    regrid_f0,
    to_internal,
)
from autovoice.engines.world.mapping import (
    Mapper,
    VoiceStats,
    enrollment_features,
    profile_stats,
    source_stats,
    warp_factor,
)
from autovoice.engines.world.options import WorldParams
from autovoice.engines.world.stream import WorldStream
from autovoice.errors import ParameterError
from autovoice.progress import ProgressCallback, no_progress

if TYPE_CHECKING:  # only for annotations: conversion reads the profile it is given
    from autovoice.analysis.f0 import F0Track
    from autovoice.profiles.profile import VoiceProfile

_Params = TypeVar("_Params", bound=WorldParams)


class WorldFamilyEngine(Generic[_Params]):
    """Training-free voice conversion: WORLD envelopes, statistics and k-NN mapping, TD-PSOLA.

    The pipeline of :mod:`autovoice.engines.world`; the ``gmm`` and ``bandcopy`` engines subclass it with
    their own :attr:`params_model` and mapping (:meth:`make_mapper`).

    Parameters
    ----------
    preset
        ``"fast"``, ``"balanced"`` (default) or ``"quality"``; see
        :data:`~autovoice.engines.world.options.PRESET_OPTIONS`.
    options
        Overrides of the preset's options (validated by the params model's ``overrides``).
    """

    name: ClassVar[str]
    #: The resolved options model (its ``resolve`` applies presets and overrides).
    params_model: ClassVar[type[WorldParams]]

    def __init__(
        self,
        *,
        preset: Preset = "balanced",
        options: Mapping[str, Any] | None = None,
        device: str = "cpu",
        settings: Settings | None = None,
    ) -> None:
        self.device = device  # the world family runs on the CPU (bandcopy's content model may not)
        self.preset: Preset = preset
        self.options: _Params = self.resolve(preset, options)

    def resolve(self, preset: Preset, options: Mapping[str, Any] | None = None) -> _Params:
        """The typed option set of ``preset`` with ``options`` on top (``invalid_engine_options``)."""
        return cast(_Params, self.params_model.resolve(preset, options))

    def params_for(self, preset: Preset | None, options: Mapping[str, Any] | None) -> _Params:
        """A call's options: the engine's own unless the call gives a preset or options."""
        if preset is None and options is None:
            return self.options
        return self.resolve(preset or self.preset, options)

    def profile_features(self, y: np.ndarray, *, sr: int, f0: F0Track) -> dict[str, np.ndarray]:
        """Statistics of a voice's enrollment audio, stored with the profile; see
        :func:`~autovoice.engines.world.mapping.enrollment_features`."""
        return enrollment_features(y, sr=sr, f0=f0)

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
        """Convert a mono vocal to the profile's voice at the planned pitch.

        Parameters
        ----------
        y
            ``(samples,)`` float32 vocal at ``sr``.
        sr
            Sample rate in Hz (16000..192000; songs at 44.1/48 kHz keep their band above 8 kHz).
        f0
            The source's F0 track (0 = unvoiced), covering ``y``.
        target_f0
            ``(frames,)`` planned output F0 in Hz on ``f0``'s frame grid (0 = unvoiced).
        profile
            A profile holding this engine's features (``world.*``).
        preset, options
            This call's preset and option overrides; by default the ones the engine was built with.
        progress
            ``progress(fraction, "convert")`` callback, called once per processing window.

        Returns
        -------
        np.ndarray
            ``(samples,)`` float32 converted vocal at ``sr``, as long as ``y``, within [-1, 1].

        Raises
        ------
        AudioError
            ``audio_empty`` / ``audio_invalid_samples``.
        ParameterError
            ``invalid_parameter`` (sample rate, shape, track lengths, negative or non-finite F0);
            ``profile_outdated`` (no or older ``world.*`` features) or ``profile_incompatible``
            (malformed ones): rebuild the profile.
        """
        x = check_audio(y, sr=sr)
        src = check_track(f0, n_samples=len(x), sr=sr, name="f0")
        tgt = np.asarray(target_f0, dtype=np.float64).reshape(-1)
        if tgt.shape != src.shape:
            raise ParameterError(
                "invalid_parameter",
                f"target_f0 has {tgt.size} frames but the source F0 track has {src.size}; plan the "
                "target F0 on the source track's frame grid.",
                {"target_frames": int(tgt.size), "source_frames": int(src.size)},
            )
        if not np.all(np.isfinite(tgt)) or np.any(tgt < 0):
            raise ParameterError("invalid_parameter", "target_f0 must be finite and >= 0 Hz (0 = unvoiced).")
        target = self.target_stats(profile)
        o = self.params_for(preset, options)
        hop_s = o.hop_s
        n = n_frames(len(x), sr=sr, hop_s=hop_s)
        src_f0 = regrid_f0(src, src_hop_s=f0.hop_s, dst_hop_s=hop_s, n=n)
        tgt_f0 = regrid_f0(tgt, src_hop_s=f0.hop_s, dst_hop_s=hop_s, n=n)
        progress(0.0, "convert")

        x16 = to_internal(x, sr=sr)
        warp = warp_factor(src_f0, target.f0_median, exponent=o.warp_exponent, max_warp=o.max_warp)
        source, envelopes = source_stats(x16, src_f0, hop_s=hop_s, warp=warp)
        mapper = self.make_mapper(target, source, profile=profile, warp=warp, params=o)

        plan = o.window_plan(n, n_samples=len(x), sr=sr, hop_s=hop_s)
        out = np.zeros(len(x), dtype=np.float32)
        phases = (0.0, 0.0)
        for i, w in enumerate(plan.windows):
            a, b = w.a, w.b
            if envelopes is not None:
                log_src = envelopes[a:b]
            else:
                log_src = np.log(analyse(x16, src_f0[a:b], np.arange(a, b), hop_s=hop_s))
            log_gain = mapper.log_gain(log_src, src_f0[a:b])
            t_frames = plan.frame_times(w)
            # The next window starts its pitch marks where this one's phase is at its first sample.
            seg, phases = psola(
                x[w.s0 : w.s1],
                src_f0[a:b],
                tgt_f0[a:b],
                t_frames=t_frames,
                sr=sr,
                warp=warp,
                phases=phases,
                carry_at=plan.next_start(i),
            )
            plan.add(out, apply_gains(seg, log_gain, t_frames=t_frames, sr=sr), w)
            progress((i + 1) / len(plan.windows), "convert")
        return np.clip(out, -1.0, 1.0)

    # Hooks for engines that change only the mapping step (``gmm``).
    def target_stats(self, profile: VoiceProfile) -> VoiceStats:
        """The profile's statistics (``profile_outdated`` / ``profile_incompatible`` when it has none)."""
        return profile_stats(profile)

    def make_mapper(
        self, target: VoiceStats, source: VoiceStats, *, profile: VoiceProfile, warp: float, params: _Params
    ) -> Mapper:
        """The mapping from the source's envelopes to the target's for one conversion."""
        return Mapper(target, source, warp=warp, params=params, hop_s=params.hop_s)


class WorldEngine(WorldFamilyEngine[WorldParams]):
    """The default engine; see :mod:`autovoice.engines.world`. It also converts live
    (:meth:`open_stream`)."""

    name: ClassVar[str] = "world"
    params_model: ClassVar[type[WorldParams]] = WorldParams

    def open_stream(
        self,
        profile: VoiceProfile,
        *,
        sr: int,
        preset: Preset = "balanced",
        options: Mapping[str, Any] | None = None,
    ) -> WorldStream:
        """A live stream of this engine for ``profile`` at ``sr`` (see :class:`WorldStream`); the frame
        period is 10 ms whatever the preset.

        Raises
        ------
        ParameterError
            ``invalid_engine_options``, ``invalid_preset``, ``invalid_sample_rate``; ``profile_outdated``
            / ``profile_incompatible``.
        """
        return WorldStream(profile, sr=sr, params=self.resolve(preset, options))
