"""Device choice: ``auto``, ``cpu`` or ``cuda:N``; CUDA out-of-memory detection for CPU fallback."""

from __future__ import annotations

import re

from autovoice.errors import ParameterError

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(spec: str = "auto") -> str:
    """Turn a device spec into a concrete torch device string.

    ``auto`` picks ``cuda:0`` when a CUDA GPU is usable, otherwise ``cpu``. ``cuda`` means ``cuda:0``.
    Asking for CUDA on a machine without it raises ``device_unavailable``.
    """
    spec = spec.strip().lower()
    if not _DEVICE_RE.match(spec):
        raise ParameterError(
            "invalid_device", f"Unknown device '{spec}'. Use 'auto', 'cpu' or 'cuda:N'.", {"device": spec}
        )
    if spec == "cpu":
        return "cpu"
    import torch

    if spec == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        raise ParameterError(
            "device_unavailable",
            f"Device '{spec}' is not available on this machine; use 'auto' or 'cpu'.",
            {"device": spec},
        )
    return f"cuda:{index}"


def is_cuda_oom(exc: BaseException) -> bool:
    """True when ``exc`` is a CUDA out-of-memory error (so the work can be retried on CPU)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return isinstance(exc, torch.OutOfMemoryError) or "CUDA out of memory" in str(exc)
