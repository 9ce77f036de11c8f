"""The engine interface. An engine turns a vocal into a profile's voice at a planned pitch.

Adding an engine means adding one module with a class that follows :class:`Engine`, a pydantic model of
its own options, and one :class:`~autovoice.registry.Choice` in :data:`autovoice.engines.ENGINES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from autovoice.errors import ParameterError
from autovoice.progress import ProgressCallback, no_progress

#: Conversion presets, defined once: engines and the pipeline map them to their own options.
Preset = Literal["fast", "balanced", "quality"]

if TYPE_CHECKING:
    from pydantic import ValidationError

    from autovoice.analysis.f0 import F0Track
    from autovoice.profiles.profile import VoiceProfile


class Engine(Protocol):
    """A voice-conversion engine, built once per process and device and reused across conversions.

    The constructor takes keyword ``device`` and ``settings`` (and may load models). ``profile_features``
    runs once, when a profile is built, and returns the statistics the engine needs later (stored with the
    profile under ``"<name>.<key>"``). ``convert`` keeps the words and the planned melody of ``y`` and
    gives it the profile's voice; ``preset`` and ``options`` (validated by the engine's options model)
    apply to that call only.
    """

    name: ClassVar[str]

    def profile_features(self, y: np.ndarray, *, sr: int, f0: F0Track) -> dict[str, np.ndarray]:
        """Engine statistics of enrollment audio ``y`` (mono float32 at ``sr``) with its F0 track."""
        ...

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
        """Convert mono vocal ``y`` (float32 at ``sr``).

        ``f0`` is the source's F0 track; ``target_f0`` is the planned output F0 in Hz on the same frame
        grid (0 = unvoiced). Returns mono float32 audio at ``sr`` of the same length as ``y``.
        """
        ...


class EngineStream(Protocol):
    """One live stream's conversion state for an engine (what :meth:`StreamingEngine.open_stream` returns).

    The live converter hands it consecutive, overlapping windows of the input. A window's frame ``j`` is
    centred at sample ``j * hop`` of the window (``hop`` = 10 ms); the window's first frame is global
    frame ``first_frame``. Frames before ``final_frames`` will never change (their F0 is final); the
    rest lie in the lookahead. The next window will start ``advance`` samples later, where the
    stream may pick up state it carried (such as a pitch-mark phase).
    """

    #: Past audio (s) the stream needs before the span it converts.
    context_s: float
    #: Future audio (s) it needs after the span.
    lookahead_s: float

    def convert_window(
        self,
        x: np.ndarray,
        *,
        source_f0: np.ndarray,
        target_f0: np.ndarray,
        first_frame: int,
        final_frames: int,
        advance: int,
    ) -> np.ndarray:
        """The converted window: ``(len(x),)`` float32 at the stream's rate."""
        ...


@runtime_checkable
class StreamingEngine(Protocol):
    """An engine that can convert live: it opens a stream per live session."""

    def open_stream(
        self, profile: VoiceProfile, *, sr: int, preset: Preset, options: Mapping[str, Any]
    ) -> EngineStream:
        """A new stream for ``profile`` at ``sr`` with this preset and engine options."""
        ...


def options_error(engine: str, exc: ValidationError) -> ParameterError:
    """``invalid_engine_options`` naming the first offending option of ``engine``."""
    errors = [{"option": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()]
    first = errors[0]
    return ParameterError(
        "invalid_engine_options",
        f"Invalid option '{first['option']}' for the {engine} engine: {first['msg']}.",
        {"engine": engine, "errors": errors},
    )


def profile_outdated(
    name: str, engine: str, why: str, *, missing: list[str], version: int | None
) -> ParameterError:
    """``profile_outdated``: the profile was built before this engine (or this version of its
    features) existed; rebuilding it from its recordings computes them."""
    return ParameterError(
        "profile_outdated",
        f"Profile '{name}' {why}. Rebuild it from its recordings (autovoice profile create '{name}' "
        f"FILE...) to convert with the {engine} engine.",
        {
            "profile": name,
            "engine": engine,
            "missing": missing,
            "version": version,
            "rebuild": f"autovoice profile create '{name}' FILE...",
        },
    )
