"""Progress reporting: every long step takes a ``progress(fraction, stage)`` callback."""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(fraction, stage)``: ``fraction`` in 0..1 of the whole task, ``stage`` a short name.
ProgressCallback = Callable[[float, str], None]


def no_progress(fraction: float, stage: str) -> None:
    """A callback that ignores progress."""


def sub_progress(progress: ProgressCallback, start: float, end: float) -> ProgressCallback:
    """A callback that maps a sub-task's 0..1 onto ``start..end`` of the parent's progress."""

    def report(fraction: float, stage: str) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), stage)

    return report
