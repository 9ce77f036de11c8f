"""Generate the parity fixtures in ``tests/fixtures/parity/`` from the reference implementations. Run once.

The references are the PyPI wheels of ``infer-rvc-python`` (RVC's own ``infer_pack`` models, MIT) and
``so-vits-svc-fork`` (so-vits-svc 4.0's ``SynthesizerTrn``, MIT). They are test oracles only: this script
reads their model code from the wheels (no install, none of their dependencies), builds each synthesizer
with the weights of ours (random, from a fixed seed, as ``tests/engines/fakes.py`` makes them), runs it
on fixed inputs while recording every random draw it makes, and stores inputs, draws and output. The
tests then run our synthesizers on the same inputs and draws, without the references installed.

    pip download --no-deps infer-rvc-python==1.3.1 so-vits-svc-fork==4.2.30 -d /tmp/wheels
    .venv/bin/python tests/engines/parity/make_fixtures.py /tmp/wheels

so-vits-svc 4.1's network with its default options (``vec768l12`` content, no ``vol_embedding``,
nsf-hifigan, residual-coupling flow) is 4.0's with ``ssl_dim = 768``; the ``sovits-4.1`` case builds the
fork's synthesizer that way.
"""

from __future__ import annotations

import sys
import tempfile
import types
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.engines.parity.cases import (  # noqa: E402
    CASES,
    Case,
    build_ours,
    build_rmvpe,
    make_inputs,
    rmvpe_audio,
)

OUT = ROOT / "tests" / "fixtures" / "parity"


def _extract(wheels: Path, prefix: str, into: Path) -> Path:
    (whl,) = sorted(wheels.glob(f"{prefix}-*.whl"))
    with zipfile.ZipFile(whl) as z:
        z.extractall(into)
    return into


def _package(name: str, path: Path) -> None:
    """Register an empty package ``name`` at ``path`` (so its ``__init__`` with heavy imports never runs)."""
    mod = types.ModuleType(name)
    mod.__path__ = [str(path)]
    sys.modules[name] = mod


def load_rvc_oracle(root: Path) -> types.ModuleType:
    base = root / "infer_rvc_python"
    _package("infer_rvc_python", base)
    _package("infer_rvc_python.lib", base / "lib")
    _package("infer_rvc_python.lib.infer_pack", base / "lib" / "infer_pack")
    import importlib

    return importlib.import_module("infer_rvc_python.lib.infer_pack.models")


def load_sovits_oracle(root: Path) -> types.ModuleType:
    base = root / "so_vits_svc_fork"
    _package("so_vits_svc_fork", base)
    _package("so_vits_svc_fork.modules", base / "modules")
    _package("so_vits_svc_fork.modules.decoders", base / "modules" / "decoders")
    # Stubs for what the synthesizer module imports but the hifi-gan path never uses.
    istft = types.ModuleType("so_vits_svc_fork.modules.decoders.mb_istft")
    istft.Multiband_iSTFT_Generator = istft.Multistream_iSTFT_Generator = istft.iSTFT_Generator = None  # type: ignore[attr-defined]
    sys.modules[istft.__name__] = istft
    for name in ("torchcrepe", "cm_time"):
        stub = types.ModuleType(name)
        stub.timer = None  # type: ignore[attr-defined]
        sys.modules.setdefault(name, stub)
    utils = types.ModuleType("so_vits_svc_fork.utils")
    utils.get_optimal_device = lambda: torch.device("cpu")  # type: ignore[attr-defined]
    sys.modules[utils.__name__] = utils
    import importlib

    return importlib.import_module("so_vits_svc_fork.modules.synthesizers")


class Recorder:
    """Wraps ``torch.rand``/``torch.randn_like`` to keep a copy of every draw, in order."""

    def __init__(self) -> None:
        self.draws: list[torch.Tensor] = []
        self._rand = torch.rand
        self._randn_like = torch.randn_like

    def __enter__(self) -> Recorder:
        def rand(*a: Any, **k: Any) -> torch.Tensor:
            y = self._rand(*a, **k)
            self.draws.append(y.clone())
            return y

        def randn_like(x: torch.Tensor, *a: Any, **k: Any) -> torch.Tensor:
            y = self._randn_like(x, *a, **k)
            self.draws.append(y.clone())
            return y

        torch.rand = rand  # type: ignore[assignment]
        torch.randn_like = randn_like  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        torch.rand = self._rand  # type: ignore[assignment]
        torch.randn_like = self._randn_like  # type: ignore[assignment]


def run_rvc_oracle(
    models: types.ModuleType, case: Case, state: dict[str, torch.Tensor], x: dict[str, Any]
) -> Any:
    cfg = case.rvc_config_list()
    cls_name = {
        ("v1", True): "SynthesizerTrnMs256NSFsid",
        ("v2", True): "SynthesizerTrnMs768NSFsid",
        ("v1", False): "SynthesizerTrnMs256NSFsid_nono",
        ("v2", False): "SynthesizerTrnMs768NSFsid_nono",
    }[(case.version, case.f0)]
    cls = getattr(models, cls_name)
    net = cls(*cfg, is_half=False) if case.f0 else cls(*cfg)
    del net.enc_q  # as RVC's loader does
    net.load_state_dict(state, strict=True)
    net.eval()
    phone = torch.from_numpy(x["phone"])
    lengths = torch.tensor([phone.shape[1]])
    sid = torch.from_numpy(x["sid"])
    with torch.no_grad(), Recorder() as rec:
        if case.f0:
            out = net.infer(phone, lengths, torch.from_numpy(x["pitch"]), torch.from_numpy(x["nsff0"]), sid)[
                0
            ]
        else:
            out = net.infer(phone, lengths, sid)[0]
    draws = {"prior_noise": rec.draws[0]}
    if case.f0:
        draws.update(phase=rec.draws[1], source_noise=rec.draws[2])
    return out, draws


def run_sovits_oracle(
    synth: types.ModuleType, case: Case, state: dict[str, torch.Tensor], x: dict[str, Any]
) -> Any:
    m = case.sovits_model_config()
    net = synth.SynthesizerTrn(
        m["spec_channels"],
        32,
        m["inter_channels"],
        m["hidden_channels"],
        m["filter_channels"],
        m["n_heads"],
        m["n_layers"],
        m["kernel_size"],
        0.1,
        m["resblock"],
        m["resblock_kernel_sizes"],
        m["resblock_dilation_sizes"],
        m["upsample_rates"],
        m["upsample_initial_channel"],
        m["upsample_kernel_sizes"],
        m["gin_channels"],
        m["ssl_dim"],
        m["n_speakers"],
        sampling_rate=m["sampling_rate"],
    )
    net.load_state_dict(state, strict=True)
    net.eval()
    c = torch.from_numpy(x["c"])
    with torch.no_grad(), Recorder() as rec:
        out = net.infer(
            c,
            torch.from_numpy(x["f0"]),
            torch.from_numpy(x["uv"]),
            g=torch.from_numpy(x["sid"])[:, None],
            noice_scale=float(x["noise_scale"]),
        )
    return out, {"prior_noise": rec.draws[0], "phase": rec.draws[1], "source_noise": rec.draws[2]}


def make_rmvpe(root: Path) -> None:
    """RMVPE: RVC's ``lib/rmvpe.py`` (mel front end, network, decoding) on fixed audio and random weights."""
    import importlib

    _package("infer_rvc_python", root / "infer_rvc_python")
    _package("infer_rvc_python.lib", root / "infer_rvc_python" / "lib")
    ref = importlib.import_module("infer_rvc_python.lib.rmvpe")
    _, state = build_rmvpe()
    net = ref.E2E(4, 1, (2, 2))
    net.load_state_dict(state, strict=True)
    net.eval()
    mel_fn = ref.MelSpectrogram(False, 128, 16000, 1024, 160, None, 30, 8000)
    audio = rmvpe_audio()
    with torch.no_grad():
        mel = mel_fn(torch.from_numpy(audio)[None], center=True)
        n = mel.shape[-1]
        padded = torch.nn.functional.pad(mel, (0, 32 * ((n - 1) // 32 + 1) - n), mode="reflect")
        hidden = net(padded)[:, :n][0].numpy()
    decoder = object.__new__(ref.RMVPE)
    decoder.cents_mapping = np.pad(20 * np.arange(360) + 1997.3794084376191, (4, 4))
    f0 = decoder.decode(hidden.copy(), thred=0.03)
    checksum = float(sum(float(v.double().sum()) for v in state.values()))
    np.savez_compressed(
        OUT / "rmvpe.npz", audio=audio, mel=mel[0].numpy(), salience=hidden, f0=f0, weights_checksum=checksum
    )
    print(f"rmvpe: {hidden.shape}, voiced {int((f0 > 0).sum())}/{len(f0)}")


def main(wheels: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rvc_models = load_rvc_oracle(_extract(wheels, "infer_rvc_python", Path(tmp) / "rvc"))
        sovits_synth = load_sovits_oracle(_extract(wheels, "so_vits_svc_fork", Path(tmp) / "sovits"))
        make_rmvpe(Path(tmp) / "rvc")
        for case in CASES:
            _ours, state = build_ours(case)
            x = make_inputs(case)
            torch.manual_seed(1234)
            if case.kind == "rvc":
                out, draws = run_rvc_oracle(rvc_models, case, state, x)
            else:
                out, draws = run_sovits_oracle(sovits_synth, case, state, x)
            checksum = float(sum(float(v.double().sum()) for v in state.values()))
            arrays = {k: np.asarray(v) for k, v in x.items()}
            arrays.update({k: v.numpy() for k, v in draws.items()})
            np.savez_compressed(
                OUT / f"{case.name}.npz",
                **arrays,
                expected=out.numpy(),
                weights_checksum=np.float64(checksum),
            )
            print(f"{case.name}: output {tuple(out.shape)}, {len(draws)} draws, checksum {checksum:.6f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
