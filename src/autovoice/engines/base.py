"""The engine interface. An engine turns a vocal into a profile's voice at a planned pitch.

Adding an engine means adding one module with a class that follows :class:`Engine` and one line in
:data:`autovoice.engines.ENGINES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

import numpy as np

from autovoice.progress import ProgressCallback, no_progress

#: Conversion presets, defined once: engines and the pipeline map them to their own options.
Preset = Literal["fast", "balanced", "quality"]

if TYPE_CHECKING:
    from autovoice.analysis.f0 import F0Track
    from autovoice.profiles.profile import VoiceProfile


class Engine(Protocol):
    """A voice-conversion engine.

    ``profile_features`` runs once, when a profile is built, and returns the statistics the engine
    needs later (stored with the profile under ``"<name>.<key>"``). ``convert`` keeps the words and
    the planned melody of ``y`` and gives it the profile's voice.
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
        progress: ProgressCallback = no_progress,
    ) -> np.ndarray:
        """Convert mono vocal ``y`` (float32 at ``sr``).

        ``f0`` is the source's F0 track; ``target_f0`` is the planned output F0 in Hz on the same frame
        grid (0 = unvoiced). Returns mono float32 audio at ``sr`` of the same length as ``y``.
        """
        ...
