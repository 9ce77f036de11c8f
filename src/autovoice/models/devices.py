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


def one_compute_thread() -> None:
    """One thread for torch and BLAS in this process (the live paths and the API server call it).

    A live block's small matrices gain nothing from more, and on shared cores extra threads stall one
    another: the F0 tracker's p99 per block was 3-10x worse with 2 threads on 2 busy cores, a k-NN
    step's 5x (``bench/live.py``). The API server does only light work and live streams itself; its
    builds and conversions run in worker processes, which keep their own thread pools.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)


def is_cuda_oom(exc: BaseException) -> bool:
    """True when ``exc`` is a CUDA out-of-memory error (so the work can be retried on CPU)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return isinstance(exc, torch.OutOfMemoryError) or "CUDA out of memory" in str(exc)
