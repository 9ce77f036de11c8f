"""FCPE's 1-D convolutions run as faster, equivalent operations on the CPU.

``torchfcpe``'s bundled model is a 6-layer convolutional conformer. On a short window (a live block's
180 ms is 18 frames) almost all of its time is spent in ``nn.Conv1d``: PyTorch's CPU path for the
depthwise kernel-31 convolution is slow (0.7 ms where a channels-last ``conv2d`` takes 0.05 ms), and
the kernel-1 convolutions are matrix products that ``F.linear`` does with less overhead. The model's
own modules are swapped for the equivalents below on the loaded instance (the installed package is not
changed); the weights are the same tensors, so the F0 differs only by float rounding (< 0.001 Hz, see
``tests/analysis/test_fcpe_fast.py``). On 2 cores this takes one FCPE call on a live window from ~17 ms
to ~10 ms on one thread (``bench/live.py`` measures the whole block).

For the live path, :func:`int8_copy` goes further. On a short window FCPE's time is not arithmetic: its
~9.4 M weights (38 MB as float32, more than a CPU's L3) are read from memory on every call, and the
12 pointwise convolutions' weight traffic is most of a block's cost whatever the block's length. The
copy keeps those weights as int8, per output channel, and runs them with the quantized backend's
dynamic linear (``torch.ops.quantized.linear_dynamic``: activations quantized per call, int32
accumulation); the input and depthwise convolutions, the norms and the output layer stay float
(quantizing the input stack too moved the F0 twice as much for no measurable gain). The weights then
take ~13 MB and the call ~2.5x less time; the F0 moves by about a cent on voiced frames and the
voicing decisions of a live window agree with the float model's as often as two float windows agree
with each other (``tests/analysis/test_fcpe_fast.py``; ``bench/live.py`` measures the live output). The
offline tracker keeps the float model.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 (the usual name)


class PointwiseConv(nn.Module):
    """A kernel-1, ungrouped ``Conv1d`` as ``F.linear`` over the channel axis."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach()[:, :, 0].contiguous(), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.transpose(1, 2), self.weight, self.bias).transpose(1, 2)


class ChannelsLastConv(nn.Module):
    """Any other ``Conv1d`` (stride 1, symmetric zero padding) as a channels-last ``conv2d`` of height 1."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        w = conv.weight.detach()[:, :, None, :].contiguous(memory_format=torch.channels_last)
        self.weight = nn.Parameter(w, requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach(), requires_grad=False)
        self.padding = int(conv.padding[0])
        self.dilation = int(conv.dilation[0])
        self.groups = conv.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x4 = x[:, :, None, :].contiguous(memory_format=torch.channels_last)
        y = F.conv2d(
            x4,
            self.weight,
            self.bias,
            padding=(0, self.padding),
            dilation=(1, self.dilation),
            groups=self.groups,
        )
        return y[:, :, 0, :]


def _swappable(conv: nn.Conv1d) -> bool:
    return (
        conv.stride == (1,)
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding, tuple)
        and conv.transposed is False
    )


def speed_up_convolutions(model: nn.Module) -> int:
    """Replace ``model``'s stride-1 ``Conv1d`` modules in place (see the module docstring); returns how
    many were replaced. For CPU inference only: the replacements do not train."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, nn.Conv1d) or not _swappable(child):
                continue
            pointwise = child.kernel_size == (1,) and child.groups == 1 and child.padding == (0,)
            setattr(parent, name, PointwiseConv(child) if pointwise else ChannelsLastConv(child))
            swapped += 1
    return swapped


class Int8Linear(nn.Module):
    """``F.linear`` over the last axis with int8 weights (per output channel) and float activations that
    the quantized backend quantizes per call; the output is float."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        w = weight.detach().float().contiguous()
        scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
        zero = torch.zeros(w.shape[0], dtype=torch.long)
        q = torch.quantize_per_channel(w, scale, zero, 0, torch.qint8)
        b = None if bias is None else bias.detach().float().contiguous()
        self.packed = torch.ops.quantized.linear_prepack(q, b)
        self.out_features, self.in_features = w.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # reduce_range: 7-bit activations, so x86's 8-bit multiply-add cannot saturate.
        out: torch.Tensor = torch.ops.quantized.linear_dynamic(x, self.packed, True)
        return out


class Int8PointwiseConv(nn.Module):
    """:class:`PointwiseConv` with int8 weights (:class:`Int8Linear`)."""

    def __init__(self, conv: PointwiseConv) -> None:
        super().__init__()
        self.linear = Int8Linear(conv.weight, conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(x.transpose(1, 2))
        return out.transpose(1, 2)


def int8_available() -> bool:
    """True when this torch build has a quantized CPU backend (fbgemm/x86 or qnnpack)."""
    return any(e in torch.backends.quantized.supported_engines for e in ("x86", "fbgemm", "qnnpack"))


def int8_copy(model: nn.Module) -> nn.Module:
    """A copy of FCPE (after :func:`speed_up_convolutions`) for CPU inference on short windows: the
    pointwise convolutions with int8 weights, the output layer's weight norm computed once (see the
    module docstring). ``model`` is not changed."""
    out = copy.deepcopy(model)
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, PointwiseConv):
                setattr(parent, name, Int8PointwiseConv(child))
    inner = getattr(out, "model", None)
    proj = getattr(inner, "output_proj", None)
    if inner is not None and proj is not None and hasattr(proj, "parametrizations"):
        with torch.no_grad():
            plain = nn.Linear(proj.in_features, proj.out_features, bias=proj.bias is not None)
            plain.weight.copy_(proj.parametrizations.weight())
            if proj.bias is not None:
                plain.bias.copy_(proj.bias)
        inner.output_proj = plain
    return out.eval()
