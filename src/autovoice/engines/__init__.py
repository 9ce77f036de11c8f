"""Voice-conversion engines behind one small interface, looked up by name in :data:`ENGINES`.

Engines are built once per process and device (:func:`load_engine`, through the model cache) and reused
across conversions; a conversion passes its preset and engine options to ``convert``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from autovoice.config import Settings
from autovoice.engines.base import Engine, Preset
from autovoice.registry import Choice, Registry

EngineName = Literal["world", "gmm", "bandcopy", "rvc", "sovits"]
ENGINES = Registry(
    "engine",
    "unknown_engine",
    [
        Choice(
            "world",
            "Training-free WORLD envelope conversion with PSOLA pitch; CPU, no models.",
            "autovoice.engines.world.engine:WorldEngine",
            "autovoice.engines.world.options:WorldOptions",
        ),
        Choice(
            "gmm",
            "Training-free: the world engine with a per-profile phonetic-class timbre map (keeps the words).",
            "autovoice.engines.gmm:GmmEngine",
            "autovoice.engines.gmm:GmmOptions",
        ),
        Choice(
            "bandcopy",
            "Training-free: the world engine below 2 kHz, the profile's own voiced frames above it "
            "(more of the voice, some words lost).",
            "autovoice.engines.bandcopy:BandcopyEngine",
            "autovoice.engines.bandcopy:BandcopyOptions",
        ),
        Choice(
            "rvc",
            "A profile's trained RVC v1/v2 or Applio model (.pth, optional .index); HuBERT + NSF-HiFi-GAN.",
            "autovoice.engines.rvc.engine:RvcEngine",
            "autovoice.engines.rvc.engine:RvcOptions",
        ),
        Choice(
            "sovits",
            "A profile's trained so-vits-svc 4.0/4.1 model (G_*.pth + config.json, optional cluster model).",
            "autovoice.engines.sovits.engine:SovitsEngine",
            "autovoice.engines.sovits.engine:SovitsOptions",
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
