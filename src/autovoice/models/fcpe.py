"""FCPE's 1-D convolutions run as faster, equivalent operations on the CPU.

``torchfcpe``'s bundled model is a 6-layer convolutional conformer. On a short window (a live block's
180 ms is 18 frames) almost all of its time is spent in ``nn.Conv1d``: PyTorch's CPU path for the
depthwise kernel-31 convolution is slow (0.7 ms where a channels-last ``conv2d`` takes 0.05 ms), and
the kernel-1 convolutions are matrix products that ``F.linear`` does with less overhead. The model's
own modules are swapped for the equivalents below on the loaded instance (the installed package is not
changed); the weights are the same tensors, so the F0 differs only by float rounding (< 0.001 Hz, see
``tests/analysis/test_fcpe_fast.py``). On 2 cores this takes one FCPE call on a live window from ~17 ms
to ~10 ms on one thread (``bench/live.py`` measures the whole block).
"""

from __future__ import annotations

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
