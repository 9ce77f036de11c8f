"""ONNX Runtime for the rvc engine's synthesizer on the CPU: about twice PyTorch's speed on 2 cores for
RVC v2 48k with outputs within 1e-3 (measured: ``bench/results/onnx_decoders.md``).

What runs in ONNX Runtime: all of :meth:`~autovoice.engines.rvc.model.RVCSynthesizer.infer` from content
features, coarse pitch, speaker id, the prior's noise and the NSF excitation to audio (prior encoder,
flow, NSF-HiFi-GAN). What stays in PyTorch: the excitation itself
(:meth:`~autovoice.engines.nsf.NSFHiFiGAN.excitation`, a few cumulative sums). Exported, it does not keep
parity: ONNX Runtime's linear ``Resize`` of the running phase is not monotonic to the last bit, the wrap
detector sees spurious wraps, and the sine drifts by up to half a cycle within seconds (max |diff| 0.56 on
10 s).

The graph is exported once per checkpoint, on first use, with ``torch.onnx.export`` (the ``onnx``
package) into ``<model_cache_dir>/onnx/``, named by a key over the checkpoint's sha256,
:data:`EXPORT_VERSION`, the opset and the torch and onnx versions, written to a temporary file and renamed
into place (a crash or a concurrent export never leaves half a file under the final name). The weights
come from :func:`~autovoice.models.safe_load.load_checkpoint` (``weights_only``), as for PyTorch; the
export traces AutoVoice's own modules and runs nothing from the checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from autovoice.config import Settings
    from autovoice.engines.rvc.model import RVCSynthesizer

log = logging.getLogger(__name__)

#: Bump when the exported graph changes (its inputs, what it covers): old cache files are then ignored.
EXPORT_VERSION = 1
OPSET = 17
#: Length of the example inputs the graph is traced with, frames (its frames axis is dynamic).
EXPORT_FRAMES = 200
#: Shorter windows run in PyTorch: the traced graph holds for windows longer than the attention's
#: relative-position window (10 frames each side). The engine's windows are 100 frames and more.
MIN_FRAMES = 32
#: ``pip`` names of what the ONNX path needs (the export and the runtime).
PACKAGES = ("onnx", "onnxruntime")
#: ``torch.onnx.export`` keeps its state in globals (and ``warnings.catch_warnings`` is process-wide):
#: one export at a time in a process.
_EXPORT_LOCK = threading.Lock()


def missing_package() -> str | None:
    """The first of :data:`PACKAGES` (``onnx`` for the export, ``onnxruntime`` to run) that does not
    import, or ``None``."""
    import importlib

    for name in PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def export_key(checkpoint_sha256: str) -> str:
    """The cache key of the graph exported from a checkpoint with this sha256 by this code and these
    torch and onnx versions."""
    import onnx

    parts = f"{checkpoint_sha256}|v{EXPORT_VERSION}|opset{OPSET}|torch {torch.__version__}"
    parts += f"|onnx {onnx.__version__}"
    return hashlib.sha256(parts.encode()).hexdigest()


def decoder_path(checkpoint: Path, *, settings: Settings | None = None) -> Path:
    """Where the graph of ``checkpoint`` (an RVC ``.pth``) is cached:
    ``<model_cache_dir>/onnx/rvc-<checkpoint sha256[:16]>-<key[:16]>.onnx``."""
    from autovoice.config import get_settings
    from autovoice.models.weights import sha256_file

    digest = sha256_file(checkpoint)
    folder = (settings or get_settings()).model_cache_dir / "onnx"
    return folder / f"rvc-{digest[:16]}-{export_key(digest)[:16]}.onnx"


class _WithPitch(nn.Module):
    """The graph's function for models with F0: ``(phone, pitch, sid, prior_noise, sines) -> audio``."""

    def __init__(self, net: RVCSynthesizer) -> None:
        super().__init__()
        self.net = net

    def forward(
        self,
        phone: torch.Tensor,
        pitch: torch.Tensor,
        sid: torch.Tensor,
        prior: torch.Tensor,
        sines: torch.Tensor,
    ) -> torch.Tensor:
        return self.net.infer(phone, pitch, None, sid, prior_noise=prior, sines=sines)


class _WithoutPitch(nn.Module):
    """The graph's function for models without F0 (plain HiFi-GAN): ``(phone, sid, prior_noise) -> audio``."""

    def __init__(self, net: RVCSynthesizer) -> None:
        super().__init__()
        self.net = net

    def forward(self, phone: torch.Tensor, sid: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return self.net.infer(phone, None, None, sid, prior_noise=prior)


def export_decoder(net: RVCSynthesizer, path: Path) -> None:
    """Export ``net``'s synthesizer (all but the NSF excitation) as an ONNX graph to ``path``, atomically.

    Graph inputs: ``phone`` ``(1, frames, content_dim)`` float32, ``pitch`` ``(1, frames)`` int64 (F0
    models), ``sid`` ``(1,)`` int64, ``prior_noise`` ``(1, inter_channels, frames)`` float32, ``sines``
    ``(1, frames * hop, 1)`` float32 (F0 models); output ``audio`` ``(1, 1, frames * hop)``. Needs the
    ``onnx`` package; raises what ``torch.onnx.export`` raises.
    """
    n = EXPORT_FRAMES
    c = net.enc_p.out_channels
    content_dim = net.enc_p.emb_phone.in_features
    phone = torch.zeros(1, n, content_dim)
    sid = torch.zeros(1, dtype=torch.int64)
    prior = torch.zeros(1, c, n)
    frames = {1: "frames"}
    module: nn.Module
    if net.f0:
        module = _WithPitch(net)
        args: tuple[torch.Tensor, ...] = (
            phone,
            torch.ones(1, n, dtype=torch.int64),
            sid,
            prior,
            torch.zeros(1, n * net.hop_length, net.dec.harmonics),
        )
        names = ["phone", "pitch", "sid", "prior_noise", "sines"]
        axes = {"phone": frames, "pitch": frames, "prior_noise": {2: "frames"}, "sines": {1: "samples"}}
    else:
        module = _WithoutPitch(net)
        args = (phone, sid, prior)
        names = ["phone", "sid", "prior_noise"]
        axes = {"phone": frames, "prior_noise": {2: "frames"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)  # as the caches do
    os.close(fd)
    try:
        # The tracer warns about every shape it turns into a Python number; the dynamic frames axis and
        # MIN_FRAMES cover what those warnings are about.
        with _EXPORT_LOCK, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.eval(),
                args,
                tmp,
                input_names=names,
                output_names=["audio"],
                dynamic_axes={**axes, "audio": {2: "samples"}},
                opset_version=OPSET,
                dynamo=False,
            )
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class OnnxDecoder:
    """An RVC synthesizer whose network runs in ONNX Runtime: :meth:`infer` takes what
    :meth:`RVCSynthesizer.infer <autovoice.engines.rvc.model.RVCSynthesizer.infer>` takes and gives the
    same audio (within 1e-3; 4e-6 measured)."""

    def __init__(self, path: Path, net: RVCSynthesizer, *, threads: int | None = None) -> None:
        """Load the graph at ``path`` (exported from ``net`` by :func:`export_decoder`).

        ``threads``: ONNX Runtime's intra-op threads; default PyTorch's (``torch.get_num_threads()``:
        the physical cores unless the process set fewer), so both runtimes use the same cores.
        """
        import onnxruntime as ort

        self.path = path
        self.net = net
        #: Whether this object exported the graph (False when it reused a cached file).
        self.exported = False
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or torch.get_num_threads()
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting after a run: PyTorch runs next (the content encoder, the excitation) on the
        # same cores, and spinning threads would take their time.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        # the exporter drops inputs a graph does not use
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.threads = so.intra_op_num_threads

    def infer(
        self,
        phone: torch.Tensor,
        pitch: torch.Tensor | None,
        nsff0: torch.Tensor | None,
        sid: torch.Tensor,
        *,
        prior_noise: torch.Tensor,
        phase: torch.Tensor | None = None,
        source_noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(1, 1, frames * hop)`` audio, as :meth:`RVCSynthesizer.infer` gives it, on the CPU.

        The NSF excitation is computed in PyTorch from ``nsff0``, ``phase`` and ``source_noise`` (drawn
        when ``None``); windows shorter than :data:`MIN_FRAMES` run in PyTorch.
        """
        net = self.net
        if phone.shape[1] < MIN_FRAMES:
            with torch.no_grad():
                return net.infer(
                    phone, pitch, nsff0, sid, prior_noise=prior_noise, phase=phase, source_noise=source_noise
                )
        feed: dict[str, Any] = {
            "phone": phone.float().numpy(),
            "sid": sid.to(torch.int64).numpy(),
            "prior_noise": prior_noise.float().numpy(),
        }
        if net.f0:
            assert pitch is not None
            assert nsff0 is not None
            with torch.no_grad():
                sines = net.dec.excitation(nsff0.float(), phase=phase, noise=source_noise)
            feed["pitch"] = pitch.to(torch.int64).numpy()
            feed["sines"] = sines.numpy()
        out = self.session.run(["audio"], {k: v for k, v in feed.items() if k in self.inputs})[0]
        return torch.from_numpy(out)


def load_onnx_decoder(
    net: RVCSynthesizer, checkpoint: Path, *, settings: Settings | None = None, threads: int | None = None
) -> OnnxDecoder:
    """``net`` (built from ``checkpoint``) on ONNX Runtime: the cached graph, exported first when absent.

    Needs ``onnx`` and ``onnxruntime`` (:func:`missing_package`); raises what the export or ONNX Runtime
    raises (the engine falls back to PyTorch with a warning).
    """
    path = decoder_path(checkpoint, settings=settings)
    exported = False
    if not path.is_file():
        t0 = time.perf_counter()
        export_decoder(net, path)
        exported = True
        log.info(
            "rvc: exported %s's synthesizer for ONNX Runtime in %.1f s (%s, %.0f MB)",
            checkpoint.name,
            time.perf_counter() - t0,
            path,
            path.stat().st_size / 1e6,
        )
    decoder = OnnxDecoder(path, net, threads=threads)
    decoder.exported = exported
    return decoder


class DecoderSlot:
    """A loaded model's ONNX decoder, made at most once (thread-safe): the decoder, or ``None`` after a
    failed export or load, logged as one warning."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tried = False
        self._decoder: OnnxDecoder | None = None

    def get(self, net: RVCSynthesizer, checkpoint: Path, *, settings: Settings | None) -> OnnxDecoder | None:
        with self._lock:
            if not self._tried:
                self._tried = True
                try:
                    self._decoder = load_onnx_decoder(net, checkpoint, settings=settings)
                except Exception as exc:  # any export/runtime failure: PyTorch renders instead
                    log.warning(
                        "rvc: ONNX Runtime is unavailable for %s (%s: %s); rendering with PyTorch",
                        checkpoint.name,
                        type(exc).__name__,
                        str(exc).splitlines()[0][:300] if str(exc) else "",
                    )
            return self._decoder
