"""Networks defined in the tests: a ResNet-style bottleneck and a GoogLeNet-style inception
block, where 1×1 convs are followed by batch norm and ReLU, as in the real ones.

Module names follow torchvision's (`layer1.0.conv1` → `bn1`, BasicConv2d's `conv` → `bn`,
Sequential `…0` → `…1`), so the README's commands run with this network in place of
ResNet-50. Every ReLU is its own module, so a hook can read the activation after it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch import nn

# Each 1×1 conv the tests check, and the ReLU that follows its batch norm.
RELU_AFTER = {
    "layer1.0.conv1": "layer1.0.relu1",
    "layer1.1.conv1": "layer1.1.relu1",
    "inception3a.branch1.conv": "inception3a.branch1.relu",
    "inception3a.branch2.0.conv": "inception3a.branch2.0.relu",
    "inception3a.branch3.0": "inception3a.branch3.2",
}
# The batch norms' eps where it is not PyTorch's default 1e-5 (state dicts do not store it).
EPS = {"inception3a.branch1.conv": 1e-3, "inception3a.branch2.0.conv": 1e-3}
# Each 1×1 conv and the batch norm after it (found by naming, and by dataflow in capture).
BN_AFTER = {
    "layer1.0.conv1": "layer1.0.bn1",
    "layer1.0.conv3": "layer1.0.bn3",
    "layer1.0.downsample.0": "layer1.0.downsample.1",
    "layer1.1.conv1": "layer1.1.bn1",
    "layer1.1.conv3": "layer1.1.bn3",
    "inception3a.branch1.conv": "inception3a.branch1.bn",
    "inception3a.branch2.0.conv": "inception3a.branch2.0.bn",
    "inception3a.branch3.0": "inception3a.branch3.1",
}


class Bottleneck(nn.Module):
    """ResNet's: 1×1 reduce, 3×3, 1×1 expand, each with batch norm; a 1×1 shortcut if needed."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.relu1 = nn.ReLU(inplace=True)  # as torchvision's: it overwrites bn1's output
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu3 = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.relu2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu3(y + shortcut)


class BasicConv2d(nn.Module):
    """GoogLeNet's: conv (no bias), batch norm (eps 1e-3, as torchvision's), ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Three branches: 1×1; 1×1 reduce then 3×3; a biased 1×1 with an affine=False batch norm."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(cin, 8, 1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, 6, 1), BasicConv2d(6, 8, 3, padding=1))
        self.branch3 = nn.Sequential(
            nn.Conv2d(cin, 4, 1, bias=True), nn.BatchNorm2d(4, affine=False), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class ResNetLike(nn.Module):
    """A 3×3 stem at stride 4, two bottlenecks, an inception block and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(2)
        self.layer1 = nn.Sequential(Bottleneck(16, 8, 24, stride=2), Bottleneck(24, 8, 24))
        self.inception3a = Inception(24)
        self.fc = nn.Linear(20, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 16, H/4, W/4)
        x = self.inception3a(self.layer1(x))  # (N, 20, H/8, W/8)
        return self.fc(x.mean(dim=(2, 3)))


def trained(seed: int = 0) -> ResNetLike:
    """The network with non-trivial batch norms: random γ and β, and running statistics
    from a few training-mode passes over inputs that are neither centred nor unit."""
    torch.manual_seed(seed)
    net = ResNetLike()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.5
            if m.affine:
                with torch.no_grad():
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)
    net.train()
    with torch.no_grad():
        for _ in range(4):
            net(torch.randn(4, 3, 64, 64) * 2.0 + 0.7)
    return net.eval()


def resnet_like(weights: str | None = None) -> ResNetLike:
    """The factory `onebyone capture tests.nets:resnet_like --weights PATH` builds: like
    torchvision's `resnet50(weights=…)`, `weights` picks the trained parameters (a path)."""
    net = ResNetLike()
    if weights is not None:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval()


def activations(
    net: nn.Module, x: torch.Tensor, names: list[str], inputs: bool = False
) -> dict[str, torch.Tensor]:
    """The outputs (or inputs) of the named modules for x (1, 3, H, W), each without N."""
    modules = dict(net.named_modules())
    out: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], result: torch.Tensor) -> None:
            out[name] = (inp[0] if inputs else result)[0].detach().clone()

        return hook

    handles = [modules[n].register_forward_hook(keep(n)) for n in names]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return out


def preprocess(path: str | Path) -> torch.Tensor:
    """The default preprocessing of `onebyone capture`, as (3, 224, 224); stands in for a
    torchvision weights' transforms() where the README uses them."""
    from app.cli import Preprocessing

    with Image.open(path) as img:
        return Preprocessing()(img)
