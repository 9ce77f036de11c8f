"""The world engine's options: what each preset sets, the overrides a caller may give
(:class:`WorldOptions`) and the resolved, typed set a conversion runs with (:class:`WorldParams`).

The ``gmm`` and ``bandcopy`` engines extend both models with their own fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autovoice.engines.base import Preset, options_error
from autovoice.engines.world.dsp import N_CEP, WindowPlan
from autovoice.errors import unknown_choice

PRESETS: tuple[str, ...] = get_args(Preset)

#: What each preset changes. ``frame_period_ms``: hop of the envelope analysis and conversion.
#: ``n_cep``: cepstral order converted (fewer = smoother filter). ``knn_k``: neighbours averaged
#: (0 = global mean/variance map only, cheaper). ``knn_weight``: share of the k-NN estimate in
#: voiced frames. The options that all presets share are in :data:`COMMON_OPTIONS`.
PRESET_OPTIONS: dict[str, dict[str, Any]] = {
    "fast": {"frame_period_ms": 10.0, "n_cep": 30, "knn_k": 0, "knn_weight": 0.0},
    "balanced": {"frame_period_ms": 10.0, "n_cep": 40, "knn_k": 4, "knn_weight": 0.5},
    "quality": {"frame_period_ms": 5.0, "n_cep": 40, "knn_k": 4, "knn_weight": 0.5},
}
#: Options every preset shares (any of these or of :data:`PRESET_OPTIONS` can be overridden through
#: ``WorldEngine(options=...)``, for experiments):
#:
#: - ``knn_dims``: cepstral coefficients c1..cN used for matching;
#: - ``knn_smooth_ms``: Hann window smoothing the k-NN estimate over time;
#: - ``warp_exponent``: formant ratio = F0 ratio ** this (0 disables the warp);
#: - ``max_warp``: the formant ratio is clipped to ``1/max_warp..max_warp``;
#: - ``gain_smooth_ms``: Hann window smoothing the filter over time;
#: - ``gain_gate_db``: the filter fades out over 10 dB in frames this far below the loud frames;
#: - ``gain_max_db``: the largest boost (dB) the filter applies; more would only raise the source's
#:   noise in a band where it has no voice (a band-limited source toward a bright target);
#: - ``window_s``/``context_s``/``crossfade_s``: processing windows.
COMMON_OPTIONS: dict[str, Any] = {
    "knn_dims": 20,
    "knn_smooth_ms": 25.0,
    "warp_exponent": 0.25,
    "max_warp": 1.3,
    "gain_smooth_ms": 30.0,
    "gain_gate_db": 30.0,
    "gain_max_db": 24.0,
    "window_s": 15.0,
    "context_s": 0.3,
    "crossfade_s": 0.1,
}


class WorldOptions(BaseModel):
    """The world engine's own options; each one left out takes its preset's value.

    See :data:`PRESET_OPTIONS` and :data:`COMMON_OPTIONS` for what each does and its defaults.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    frame_period_ms: float | None = Field(default=None, ge=2.5, le=20.0, description="Analysis hop, ms.")
    n_cep: int | None = Field(default=None, ge=10, le=N_CEP, description="Cepstral order converted.")
    knn_k: int | None = Field(
        default=None, ge=0, le=32, description="Neighbours averaged (0 = global map only)."
    )
    knn_weight: float | None = Field(default=None, ge=0.0, le=1.0, description="Share of the k-NN estimate.")
    knn_dims: int | None = Field(
        default=None, ge=4, le=N_CEP, description="Cepstra c1..cN used for matching."
    )
    knn_smooth_ms: float | None = Field(default=None, ge=0.0, le=200.0, description="k-NN smoothing, ms.")
    warp_exponent: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Formant ratio = F0 ratio ** this."
    )
    max_warp: float | None = Field(default=None, ge=1.0, le=2.0, description="Largest formant ratio.")
    gain_smooth_ms: float | None = Field(default=None, ge=0.0, le=200.0, description="Filter smoothing, ms.")
    gain_gate_db: float | None = Field(
        default=None, ge=0.0, le=90.0, description="Filter fades below loud frames."
    )
    gain_max_db: float | None = Field(default=None, ge=0.0, le=48.0, description="Largest filter boost, dB.")
    window_s: float | None = Field(default=None, ge=1.0, le=60.0, description="Processing window, s.")
    context_s: float | None = Field(default=None, ge=0.05, le=2.0, description="Context each side, s.")
    crossfade_s: float | None = Field(default=None, ge=0.01, le=0.5, description="Crossfade at joins, s.")


class WorldParams(BaseModel):
    """The options a world-family conversion runs with: a preset's values with the caller's overrides on
    top, every one set (:meth:`resolve`). Field meanings: :class:`WorldOptions`.

    An engine built on the world engine subclasses this with its own fields and sets the class
    variables: its name, its overrides model and its own defaults, which go on top of the world
    engine's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: ClassVar[str] = "world"
    overrides: ClassVar[type[WorldOptions]] = WorldOptions
    own_common: ClassVar[Mapping[str, Any]] = {}
    own_presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    frame_period_ms: float
    n_cep: int
    knn_k: int
    knn_weight: float
    knn_dims: int
    knn_smooth_ms: float
    warp_exponent: float
    max_warp: float
    gain_smooth_ms: float
    gain_gate_db: float
    gain_max_db: float
    window_s: float
    context_s: float
    crossfade_s: float

    @property
    def hop_s(self) -> float:
        """The analysis hop, seconds."""
        return self.frame_period_ms / 1000.0

    def window_plan(self, n: int, *, n_samples: int, sr: int, hop_s: float) -> WindowPlan:
        """The processing windows (``window_s``, ``context_s``, ``crossfade_s``) over ``n`` frames of
        ``hop_s`` covering ``n_samples`` at ``sr``."""
        return WindowPlan.over(
            n,
            n_samples=n_samples,
            sr=sr,
            hop_s=hop_s,
            window_s=self.window_s,
            context_s=self.context_s,
            crossfade_s=self.crossfade_s,
        )

    @classmethod
    def resolve(cls, preset: Preset, options: Mapping[str, Any] | None = None) -> Self:
        """The full option set of ``preset`` with ``options`` (validated by :attr:`overrides`) on top.

        Raises
        ------
        ParameterError
            ``invalid_preset``; ``invalid_engine_options`` naming the first bad option.
        """
        if preset not in PRESET_OPTIONS:
            raise unknown_choice("invalid_preset", "preset", preset, PRESETS)
        try:
            given = cls.overrides.model_validate(dict(options or {})).model_dump(exclude_none=True)
        except ValidationError as exc:
            raise options_error(cls.engine, exc) from None
        own = cls.own_presets.get(preset, {})
        return cls.model_validate(
            {**COMMON_OPTIONS, **PRESET_OPTIONS[preset], **cls.own_common, **own, **given}
        )
