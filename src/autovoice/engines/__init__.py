"""Voice-conversion engines behind one small interface, looked up by name."""

from __future__ import annotations

import importlib
from typing import Any, Literal, get_args

from autovoice.engines.base import Engine, Preset
from autovoice.errors import ParameterError

EngineName = Literal["world"]
#: Engine name -> ``module:Class``; imported only when the engine is used.
ENGINES: dict[str, str] = {"world": "autovoice.engines.world:WorldEngine"}
DEFAULT_ENGINE: EngineName = "world"
assert set(ENGINES) == set(get_args(EngineName))


def get_engine(name: str = DEFAULT_ENGINE, **options: Any) -> Engine:
    """A new instance of the engine called ``name``, built with keyword ``options`` (e.g. ``preset``).

    Raises ``unknown_engine`` (listing the valid names) for any other name.
    """
    if name not in ENGINES:
        raise ParameterError(
            "unknown_engine",
            f"Unknown engine '{name}'. Valid engines: {', '.join(sorted(ENGINES))}.",
            {"engine": name, "valid": sorted(ENGINES)},
        )
    module, cls = ENGINES[name].split(":")
    engine: Engine = getattr(importlib.import_module(module), cls)(**options)
    return engine


__all__ = ["DEFAULT_ENGINE", "ENGINES", "Engine", "EngineName", "Preset", "get_engine"]
