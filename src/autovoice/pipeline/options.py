"""A conversion's choices, defined once: :class:`ConversionOptions`.

The CLI builds it from its flags, the API from its form fields (the OpenAPI schema is derived from this
model), the job stores it as its params JSON, and the pipeline takes it as it is. It is validated once,
here: :meth:`ConversionOptions.parse` turns any mistake into a :class:`~autovoice.errors.ParameterError`
with a stable code, naming the field (never a CLI flag: the CLI adds its own hints).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from autovoice.analysis.f0 import F0Method
from autovoice.engines import DEFAULT_ENGINE, ENGINES, EngineName
from autovoice.engines.base import Preset, options_error
from autovoice.errors import ParameterError, unknown_choice
from autovoice.metrics import ReportLevel
from autovoice.pipeline.pitch_plan import Content
from autovoice.separation import Separation

if TYPE_CHECKING:
    from autovoice.profiles.profile import VoiceProfile

#: Transposition limits, semitones.
MAX_PITCH_SHIFT = 24.0
#: How deeply engine options may nest (an engine's own options are flat): a hostile document 5,000 levels
#: deep must not exhaust the recursion of the JSON parser or of what reads it later.
MAX_OPTIONS_DEPTH = 16
#: Field -> (error code, how a user names it) for values outside a set of choices.
_CHOICE_CODES: dict[str, tuple[str, str]] = {
    "engine": ("unknown_engine", "engine"),
    "f0_method": ("invalid_f0_method", "F0 method"),
    "preset": ("invalid_preset", "preset"),
    "separation": ("invalid_separation", "separation"),
    "content": ("invalid_content", "content"),
    "metrics": ("invalid_metrics_level", "metrics level"),
}


class ConversionOptions(BaseModel):
    """What to do with a song or vocal. Every field has a default; :meth:`parse` validates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: EngineName = Field(
        default=DEFAULT_ENGINE, description="Conversion engine (see `GET /api/v1/engines`)."
    )
    f0_method: F0Method | None = Field(
        default=None,
        description="Pitch tracker; default: the preset's. The quality report re-tracks with it too.",
    )
    preset: Preset = Field(
        default="balanced", description="Speed/quality trade-off: fast, balanced or quality."
    )
    pitch_shift: float | None = Field(
        default=None,
        ge=-MAX_PITCH_SHIFT,
        le=MAX_PITCH_SHIFT,
        allow_inf_nan=False,
        description="Transpose by this many semitones (-24..24). Leave out for 0, or use auto_key.",
    )
    auto_key: bool = Field(default=False, description="Move the melody into the profile's vocal range.")
    separation: Separation = Field(
        default="auto",
        description="Vocal separation: auto (skipped for a voice alone; else Demucs if installed, else "
        "Spleeter), demucs, spleeter, none.",
    )
    content: Content = Field(
        default="auto",
        description="What the input is, for auto key: auto (decided from how steady its pitch is), speech "
        "(the profile's speaking median, exact shift) or song (its singing range, whole semitones; "
        "whole octaves with an accompaniment).",
    )
    metrics: ReportLevel = Field(
        default="fast", description="Quality report: full, fast (bounded windows) or off."
    )
    engine_options: dict[str, Any] = Field(
        default_factory=dict, description="The engine's own options (its schema in `GET /api/v1/engines`)."
    )

    @field_validator("engine_options", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        """Form fields carry the engine options as JSON text."""
        if isinstance(value, str | bytes):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON object ({exc.msg})") from None
            except RecursionError:
                raise ValueError(f"nested more than {MAX_OPTIONS_DEPTH} levels deep") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ConversionOptions:
        if self.pitch_shift is not None and self.auto_key:
            raise ValueError("give either pitch_shift or auto_key, not both")
        return self

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None = None, /, **fields: Any) -> ConversionOptions:
        """Validated options from a mapping and/or keyword fields (``None`` values mean the default).

        Raises
        ------
        ParameterError
            ``unknown_engine``, ``invalid_f0_method``, ``invalid_preset``, ``invalid_separation``,
            ``invalid_content`` or ``invalid_metrics_level`` (listing the valid names),
            ``invalid_pitch_shift``, ``invalid_engine_options`` (the engine's own model rejected one),
            ``invalid_parameter`` (anything else, naming the field).
        """
        return parse_options(cls, data, fields)

    def to_params(self) -> dict[str, Any]:
        """The JSON document a job stores (round-trips through :meth:`parse`)."""
        return self.model_dump(mode="json")

    def resolved_f0_method(self) -> F0Method:
        """The F0 tracker this conversion uses: the chosen one, else the preset's."""
        from autovoice.pipeline.presets import preset_config

        return self.f0_method or preset_config(self.preset).f0_method


_Options = TypeVar("_Options", bound=BaseModel)


def parse_options(cls: type[_Options], data: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> _Options:
    """``cls`` (an options model with ``engine`` and ``engine_options`` fields) validated from ``data``
    and ``fields`` (``None`` values mean the default), every mistake a stable code; the engine's own
    options validated by its registry model. Shared by :class:`ConversionOptions` and the live options."""
    raw = {k: v for k, v in {**dict(data or {}), **fields}.items() if v is not None}
    try:
        opts = cls.model_validate(raw)
    except ValidationError as exc:
        raise _parameter_error(cls, exc, raw) from None
    values = dict(opts)  # the bound only promises a model with these two fields
    if nesting(values["engine_options"]) > MAX_OPTIONS_DEPTH:
        raise ParameterError(
            "invalid_parameter",
            f"Invalid engine_options: nested more than {MAX_OPTIONS_DEPTH} levels deep.",
            {"field": "engine_options", "max_depth": MAX_OPTIONS_DEPTH},
        )
    engine = str(values["engine"])
    model = ENGINES.get(engine).options_model()
    if model is not None:
        try:
            checked = model.model_validate(values["engine_options"]).model_dump(exclude_none=True)
        except ValidationError as exc:
            raise options_error(engine, exc) from None
        opts = opts.model_copy(update={"engine_options": checked})
    return opts


def nesting(value: Any) -> int:
    """How many levels of objects and arrays ``value`` has (0 for a scalar, 1 for ``{}``); counted without
    recursion, and no further than one level past :data:`MAX_OPTIONS_DEPTH`."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        deepest = max(deepest, depth)
        if depth > MAX_OPTIONS_DEPTH:
            break
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _parameter_error(cls: type[BaseModel], exc: ValidationError, raw: Mapping[str, Any]) -> ParameterError:
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else ""
    if field in _CHOICE_CODES and _literal_names(cls, field):
        code, what = _CHOICE_CODES[field]
        return unknown_choice(code, what, raw.get(field), _literal_names(cls, field))
    if field == "pitch_shift":
        return ParameterError(
            "invalid_pitch_shift",
            f"pitch_shift must be a number of semitones within "
            f"-{MAX_PITCH_SHIFT:.0f}..{MAX_PITCH_SHIFT:.0f}, "
            f"got {str(raw.get(field))[:40]!r}.",
            {"field": field, "min": -MAX_PITCH_SHIFT, "max": MAX_PITCH_SHIFT},
        )
    if not field:  # the model validator: a combination of fields
        return ParameterError(
            "invalid_parameter", f"Invalid options: {err['msg'].removeprefix('Value error, ')}."
        )
    where = field if err["type"] != "extra_forbidden" else f"'{field[:40]}'"
    msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    return ParameterError("invalid_parameter", f"Invalid {where}: {msg}.", {"field": field[:40]})


def _literal_names(cls: type[BaseModel], field: str) -> tuple[str, ...]:
    """The names a Literal (or ``Literal | None``) field of ``cls`` accepts (none for other types)."""
    annotation = cls.model_fields[field].annotation
    args = get_args(annotation)
    names: list[str] = []
    for arg in args or (annotation,):
        inner = get_args(arg)
        names.extend(str(v) for v in (inner if inner else (arg,)) if isinstance(v, str))
    return tuple(names)


def options_for_profile(
    profile: VoiceProfile, data: Mapping[str, Any] | None = None, /, **fields: Any
) -> ConversionOptions:
    """:meth:`ConversionOptions.parse` for a conversion into ``profile``: the engine defaults to the kind of
    the profile's trained model (when it has one and no engine is given), and what the options need
    from the profile is checked (``auto_key_needs_recordings``, ``no_trained_model``,
    ``model_not_found``, ``profile_needs_recordings``) before any work."""
    from autovoice.profiles.trained import check_conversion, default_engine

    raw = {k: v for k, v in {**dict(data or {}), **fields}.items() if v is not None}
    if "engine" not in raw and (kind := default_engine(profile)) is not None:
        raw["engine"] = kind
    opts = ConversionOptions.parse(raw)
    check_conversion(profile, engine=opts.engine, auto_key=opts.auto_key, engine_options=opts.engine_options)
    return opts
