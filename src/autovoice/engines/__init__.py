"""Voice-conversion engines behind one small interface, looked up by name in :data:`ENGINES`.

Engines are built once per process and device (:func:`load_engine`, through the model cache) and reused
across conversions; a conversion passes its preset and engine options to ``convert``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from autovoice.config import Settings
from autovoice.engines.base import Engine, Preset
from autovoice.registry import Choice, Registry

EngineName = Literal["world"]
ENGINES = Registry(
    "engine",
    "unknown_engine",
    [
        Choice(
            "world",
            "Training-free WORLD envelope conversion with PSOLA pitch; CPU, no models.",
            "autovoice.engines.world:WorldEngine",
            "autovoice.engines.world:WorldOptions",
        ),
    ],
)
DEFAULT_ENGINE: EngineName = "world"
assert ENGINES.names == get_args(EngineName)


def get_engine(name: str = DEFAULT_ENGINE, **kwargs: Any) -> Engine:
    """A new instance of the engine called ``name``, built with keyword arguments (``preset``,
    ``options``, ``device``, ``settings``). ``unknown_engine`` lists the valid names."""
    engine: Engine = ENGINES.get(name).load()(**kwargs)
    return engine


def load_engine(name: str, *, device: str = "cpu", settings: Settings | None = None) -> Engine:
    """The process's shared instance of engine ``name`` on ``device`` (built on first use)."""
    from autovoice.models.cache import CACHE

    ENGINES.get(name)  # unknown_engine before anything is built
    return CACHE.get(f"engine:{name}", device, lambda: get_engine(name, device=device, settings=settings))


__all__ = ["DEFAULT_ENGINE", "ENGINES", "Engine", "EngineName", "Preset", "get_engine", "load_engine"]
