"""The error the model-file readers share: files of one trained model that do not belong together.

The value types of trained models (:class:`~autovoice.profiles.profile.TrainedModelInfo`,
:class:`~autovoice.profiles.profile.ModelFiles`) live with the profile that stores them.
"""

from __future__ import annotations

from typing import Any

from autovoice.errors import ParameterError


def mismatch(
    what: str, expected: object, got: object, details: dict[str, Any] | None = None
) -> ParameterError:
    """``model_config_mismatch``: ``what`` is ``got`` where the model's other files say ``expected``."""
    return ParameterError(
        "model_config_mismatch",
        f"The model's files do not belong together: {what} is {got}, expected {expected}.",
        {"what": what, "expected": str(expected), "got": str(got), **(details or {})},
    )
