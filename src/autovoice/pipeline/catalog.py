"""What a conversion can choose from, in one document: engines, F0 methods, separation backends, content
(speech or song), presets and report levels, each with a description and (engines) its options' JSON
schema.

``autovoice engines`` prints it and ``GET /api/v1/engines`` returns it; the web page builds its choices
from it.
"""

from __future__ import annotations

from typing import Any, get_args


def catalog() -> dict[str, Any]:
    from autovoice.analysis.f0 import F0_METHODS
    from autovoice.engines import DEFAULT_ENGINE, ENGINES
    from autovoice.metrics import ReportLevel
    from autovoice.pipeline.options import ConversionOptions
    from autovoice.pipeline.pitch_plan import CONTENT_CHOICES
    from autovoice.pipeline.presets import PRESETS
    from autovoice.separation import SEPARATORS

    return {
        "engines": ENGINES.describe(),
        "f0_methods": F0_METHODS.describe(),
        "separation": SEPARATORS.describe(),
        "contents": [{"name": n, "description": d} for n, d in CONTENT_CHOICES.items()],
        "presets": list(PRESETS),
        "metrics_levels": list(get_args(ReportLevel)),
        "defaults": {
            "engine": DEFAULT_ENGINE,
            "preset": "balanced",
            "separation": "auto",
            "content": ConversionOptions.model_fields["content"].default,
            "metrics": "fast",
        },
    }
