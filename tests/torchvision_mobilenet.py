"""The independent reference: torchvision's own MobileNetV2 on the same weights and photos.

Run by a Python with torch and torchvision (never the service's venv, where torchvision
does not import), by tests/test_network_reference.py:

    python tests/torchvision_mobilenet.py WEIGHTS.pth OUT_DIR PHOTO.npy [PHOTO.npy …]

Each PHOTO.npy is an RGB uint8 (H, W, 3) photo. For each it writes OUT_DIR/PHOTO.npz:
the input of every 1×1 layer as torchvision's module hooks see it, `(C, H, W)` under
the module's name; `classifier.1` as the 7×7×1280 map the pooling averages (the
classifier applied at every pixel is the 1×1 layer); `classifier.1.pooled`, what the
Linear layer itself receives; `preprocessed`, torchvision's transform of the photo;
`logits`; and `NAME.bn_out` for each 1×1 conv followed by a batch norm, that batch
norm's output (what the network computes there, before its ReLU6). OUT_DIR/layers.json
describes each 1×1 layer from torchvision's module tree: its channels, the module after
it (batch norm or none), the activation after that, and the map size its hook saw; and
torchvision's names of the 1000 classes. It imports nothing from onebyone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.models import MobileNet_V2_Weights, mobilenet_v2


def describe(model: nn.Module) -> list[dict[str, Any]]:
    """Each 1×1 conv and the classifier's Linear, in module order, with what follows it."""
    modules = dict(model.named_modules())
    out = []
    for name, m in model.named_modules():
        is_1x1 = isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)
        if not (is_1x1 or isinstance(m, nn.Linear)):
            continue
        parent, _, idx = name.rpartition(".")
        siblings = list(modules[parent].children())
        after = siblings[int(idx) + 1 :]
        bn = f"{parent}.{int(idx) + 1}" if after and isinstance(after[0], nn.BatchNorm2d) else None
        rest = after[1:] if bn else after
        act = "relu6" if rest and isinstance(rest[0], nn.ReLU6) else "none"
        eps = after[0].eps if bn else None
        out.append(
            {
                "name": name,
                "out_channels": m.out_features if isinstance(m, nn.Linear) else m.out_channels,
                "in_channels": m.in_features if isinstance(m, nn.Linear) else m.in_channels,
                "batchnorm": bn,
                "eps": eps,
                "activation": act,
            }
        )
    return out


def main(argv: list[str]) -> None:
    weights, out_dir, photos = Path(argv[0]), Path(argv[1]), [Path(p) for p in argv[2:]]
    out_dir.mkdir(parents=True, exist_ok=True)
    model = mobilenet_v2()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    transform = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    seen: dict[str, np.ndarray] = {}

    def keep(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            seen[name] = args[0][0].detach().numpy().copy()  # (C, H, W), or (1280,) pooled

        return hook

    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1):
            m.register_forward_pre_hook(keep(name))
    model.classifier[1].register_forward_pre_hook(keep("classifier.1.pooled"))

    def features_out(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        seen["classifier.1"] = output[0].detach().numpy().copy()  # (1280, 7, 7)

    model.features.register_forward_hook(features_out)
    layers = describe(model)
    modules = dict(model.named_modules())

    def keep_output(name: str) -> Callable[[nn.Module, Any, torch.Tensor], None]:
        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            seen[f"{name}.bn_out"] = output[0].detach().numpy().copy()  # (K, H, W)

        return hook

    for layer in layers:
        if layer["batchnorm"] is not None:
            modules[layer["batchnorm"]].register_forward_hook(keep_output(layer["name"]))
    for path in photos:
        seen.clear()
        image = Image.fromarray(np.load(path, allow_pickle=False))  # (H, W, 3) uint8: RGB
        x = transform(image)  # (3, 224, 224)
        with torch.no_grad():
            logits = model(x.unsqueeze(0))[0]  # (1000,)
        np.savez(
            out_dir / f"{path.stem}.npz",
            preprocessed=x.numpy(),
            logits=logits.numpy(),
            **seen,
        )
        for layer in layers:
            layer.setdefault("size", list(seen[layer["name"]].shape[1:]))
    (out_dir / "layers.json").write_text(
        json.dumps(
            {
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "pillow": PIL.__version__,
                "categories": MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"],
                "layers": layers,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
