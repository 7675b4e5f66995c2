"""`onebyone serve` starts the service; `onebyone capture` saves a 1×1 layer of your own model.

`capture` builds any importable `nn.Module`, runs one image through it with a
forward hook on the named 1×1 conv, and writes one .safetensors file with what
that layer sees and does: its input activations `input` (C, H, W), and its
`weight` (K, C) and `bias` (K,) with the batch norm that follows folded in.
`POST /api/v1/compare` and the page take that one file as input and weights.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import os
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError

from app.config import Settings

if TYPE_CHECKING:
    import torch
    from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CaptureError(Exception):
    """A capture that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Preprocessing:
    """The stated default: what torchvision's ImageNet classifiers document, done with PIL."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def describe(self) -> str:
        steps = ["RGB scaled to [0, 1]"]
        if self.resize:
            steps.append(f"shorter side resized to {self.resize} (bilinear)")
        if self.crop:
            steps.append(f"centre crop {self.crop}×{self.crop}")
        steps.append(f"normalised with mean {list(self.mean)} and std {list(self.std)}")
        return ", ".join(steps)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        import numpy as np
        import torch
        from PIL import Image

        img = img.convert("RGB")
        if self.resize:
            w, h = img.size
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(self.resize * long / short)
            size = (self.resize, new_long) if w <= h else (new_long, self.resize)
            img = img.resize(size, Image.Resampling.BILINEAR)
        if self.crop:
            w, h = img.size
            if self.crop > min(w, h):
                raise CaptureError(
                    f"The image is {w}×{h} after resizing; it cannot be cropped to "
                    f"{self.crop}×{self.crop}. Set --crop 0 or a larger --resize."
                )
            top = round((h - self.crop) / 2.0)
            left = round((w - self.crop) / 2.0)
            img = img.crop((left, top, left + self.crop, top + self.crop))
        hwc = np.asarray(img, dtype=np.float32) / 255.0  # (H, W, 3)
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        chw = ((hwc - mean) / std).transpose(2, 0, 1)  # (3, H, W)
        return torch.from_numpy(np.ascontiguousarray(chw))


@dataclass
class Captured:
    """What one forward pass showed about the layer."""

    input: torch.Tensor  # (C, H', W'): what the conv sees at each output pixel
    weight: torch.Tensor  # (K, C), batch norm folded
    bias: torch.Tensor  # (K,)
    batchnorm: str | None
    eps: float | None
    # max |W'·x + b' − the network's own tensor there| (its batch norm's output, or the conv's)
    check: float | None
    notes: list[str] = field(default_factory=list)


def load_factory(spec: str) -> tuple[str, Callable[..., Any]]:
    """`package.module:factory` (or `module:Class.method`) -> the module name and the callable."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CaptureError(
            f"{spec!r} is not MODULE:FACTORY, e.g. torchvision.models:resnet50 or "
            "mypackage.models:build_net."
        )
    if os.getcwd() not in sys.path:
        # The console script's path does not hold the working directory. It goes last, not
        # first as `python -m` puts it: a stray torchvision.py there must not replace the
        # installed package, and the user's own module is still found.
        sys.path.append(os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # the user's module can raise anything while it imports
        raise CaptureError(f"Cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CaptureError(f"{module_name} has no attribute {attr!r}.")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CaptureError(f"{spec} is not callable; name a function or class that builds it.")
    return module_name, obj


def torchvision_transforms(
    module_name: str, factory: Callable[..., Any], weights: str | None
) -> tuple[Callable[[Any], Any], str] | None:
    """The weights' documented `transforms()` for a torchvision factory, when it has them.

    torchvision is imported only here, and only when the factory came from it.
    """
    if weights is None or module_name.split(".")[0] != "torchvision":
        return None
    try:
        models = importlib.import_module("torchvision.models")
        enum = models.get_model_weights(factory)
        transforms = enum.verify(weights).transforms()
    except (ImportError, AttributeError, KeyError, ValueError, RuntimeError) as exc:
        print(f"note: no torchvision transforms for {weights!r} ({exc}); using the default.")
        return None
    return transforms, f"torchvision {weights} weights' transforms(): {transforms!r}"


def capture(model: Any, layer: str, x: torch.Tensor, batchnorm: str = "auto") -> Captured:
    """Run x (1, 3, H, W) through model, hooking conv `layer` and the batch norm after it.

    `batchnorm`: auto (the batch norm whose input is this conv's output in the forward
    pass), none, or a module name.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.modules.batchnorm import _BatchNorm

    from app import checkpoints
    from app.errors import OneByOneError

    modules = dict(model.named_modules())
    ones = [
        n
        for n, m in modules.items()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1
    ]
    listing = ", ".join(ones[:40]) + (f", … ({len(ones)} in all)" if len(ones) > 40 else "")
    conv = modules.get(layer)
    if conv is None or not isinstance(conv, nn.Conv2d):
        what = "has no module" if conv is None else f"has a {type(conv).__name__}, not a Conv2d,"
        close = checkpoints.close_names(layer, ones)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise CaptureError(f"The model {what} named {layer!r}.{hint} Its 1×1 convs: {listing}.")
    if conv.kernel_size != (1, 1) or conv.groups != 1:
        kind = f"{conv.kernel_size[0]}×{conv.kernel_size[1]}"
        kind += f" with groups={conv.groups}" if conv.groups != 1 else ""
        raise CaptureError(f"{layer} is a {kind} conv; pick a plain 1×1 one: {listing}.")
    if conv.padding_mode != "zeros" and conv.padding not in ((0, 0), "valid", "same"):
        raise CaptureError(f"{layer} pads with {conv.padding_mode!r}; only zero padding is done.")

    seen: dict[str, Any] = {"calls": 0}

    def on_conv(mod: Any, inp: tuple[Any, ...], out: torch.Tensor) -> None:
        seen["calls"] += 1
        if seen["calls"] == 1:
            # Copies: an in-place op later (ReLU(inplace=True)) would change what we keep.
            seen["input"], seen["output"], seen["conv_output"] = inp[0].clone(), out, out.clone()

    def on_bn(name: str) -> Callable[..., None]:
        def hook(mod: Any, inp: tuple[Any, ...], out: torch.Tensor) -> None:
            if seen.get("output") is not None and inp[0] is seen["output"] and "bn" not in seen:
                seen["bn"], seen["bn_output"] = name, out.clone()

        return hook

    handles = [conv.register_forward_hook(on_conv)]
    handles += [
        m.register_forward_hook(on_bn(n)) for n, m in modules.items() if isinstance(m, _BatchNorm)
    ]
    try:
        with torch.inference_mode():
            model(x)
    except Exception as exc:  # the user's model can raise anything
        raise CaptureError(f"The model failed on the image: {_reason(exc)}") from None
    finally:
        for h in handles:
            h.remove()
    if seen["calls"] == 0:
        raise CaptureError(f"{layer} did not run when the image went through the model.")
    notes = []
    if seen["calls"] > 1:
        notes.append(f"{layer} ran {seen['calls']} times; its first call was captured")

    # What the conv sees at each output pixel: its input, zero-padded and strided as it does.
    xin = seen["input"][0]  # (C, H, W)
    if isinstance(conv.padding, tuple) and any(conv.padding):
        ph, pw = conv.padding
        xin = F.pad(xin, (pw, pw, ph, ph))
    sh, sw = conv.stride
    xin = xin[:, ::sh, ::sw].contiguous()  # (C, H', W')
    if seen["output"].shape[-2:] != xin.shape[-2:]:
        raise CaptureError(
            f"{layer}'s output is {list(seen['output'].shape[-2:])} pixels but its strided "
            f"input is {list(xin.shape[-2:])}; this conv cannot be read as a 1×1 layer."
        )
    if (sh, sw) != (1, 1) or (isinstance(conv.padding, tuple) and any(conv.padding)):
        notes.append(f"input taken with the conv's stride {conv.stride} and padding {conv.padding}")

    k, c = conv.out_channels, conv.in_channels
    w = conv.weight.detach().reshape(k, c).double().numpy()  # (K, C, 1, 1) -> (K, C)
    b = None if conv.bias is None else conv.bias.detach().double().numpy()
    bn_name = {"auto": seen.get("bn"), "none": None}.get(batchnorm, batchnorm)
    reference = seen["conv_output"][0]  # (K, H', W')
    eps = None
    if bn_name is not None:
        bn = modules.get(bn_name)
        if not isinstance(bn, _BatchNorm):
            bns = [n for n, m in modules.items() if isinstance(m, _BatchNorm)]
            close = checkpoints.close_names(bn_name, bns)
            raise CaptureError(
                f"--batchnorm {bn_name!r} is not a batch norm of the model. "
                + (f"Did you mean {', '.join(close)}?" if close else "Use auto or none.")
            )
        if bn.running_mean is None or bn.running_var is None:
            raise CaptureError(
                f"{bn_name} keeps no running statistics (track_running_stats=False): in eval "
                "mode it normalises by the batch, so it cannot be folded. Use --batchnorm none."
            )
        params = checkpoints.BatchNorm(
            bn_name,
            bn.running_mean.detach().double().numpy(),
            bn.running_var.detach().double().numpy(),
            None if bn.weight is None else bn.weight.detach().double().numpy(),
            None if bn.bias is None else bn.bias.detach().double().numpy(),
        )
        eps = float(bn.eps)
        try:
            checkpoints.check_batchnorm(checkpoints.Conv(layer, w, b), params, "--batchnorm")
        except OneByOneError as exc:
            raise CaptureError(exc.detail.replace("weights.batchnorm", "--batchnorm")) from None
        w32, b_folded = checkpoints.fold(w, b, params, eps)
        b32: np.ndarray | None = b_folded
        if seen.get("bn") == bn_name:
            reference = seen["bn_output"][0]
        else:
            reference = None
            notes.append(f"{bn_name} does not take {layer}'s output directly; not checked")
    else:
        w32 = w.astype(np.float32)
        b32 = None if b is None else b.astype(np.float32)
    weight = torch.from_numpy(w32).float()
    bias = torch.zeros(k) if b32 is None else torch.from_numpy(b32).float()
    check = None
    if reference is not None:
        pre = torch.addmm(bias[:, None], weight, xin.reshape(c, -1).float())  # (K, H'·W')
        ref = reference.reshape(k, -1).float()  # (K, H'·W')
        check = float((pre - ref).abs().max())
        if check > 1e-4 * max(1.0, float(ref.abs().max())):
            notes.append(
                f"W·x + b differs from the network's own tensor by {check:.3g}; does the model "
                "change it in place, or run more than this conv before the batch norm?"
            )
    return Captured(xin.float(), weight, bias, bn_name, eps, check, notes)


def _reason(exc: BaseException) -> str:
    """An exception as one line for the terminal: its type and the first line it says."""
    first = next((line for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


def _check_output(path: Path) -> None:
    """Refuse an -o that cannot be written before any work is done."""
    folder = path.parent
    if not folder.is_dir():
        raise CaptureError(f"Cannot write {path}: the folder {folder} does not exist.")
    if path.is_dir() or not os.access(folder, os.W_OK):
        raise CaptureError(f"Cannot write {path}: it is a folder, or {folder} is not writable.")


def _capture_command(args: argparse.Namespace) -> int:
    import torch
    from PIL import Image, UnidentifiedImageError
    from safetensors.torch import save_file

    _check_output(args.output)
    module_name, factory = load_factory(args.model)
    explicit = any(v is not None for v in (args.resize, args.crop, args.mean, args.std))
    default = Preprocessing()
    pre: Callable[[Any], Any] = Preprocessing(
        default.resize if args.resize is None else args.resize,
        default.crop if args.crop is None else args.crop,
        tuple(args.mean or default.mean),
        tuple(args.std or default.std),
    )
    described = pre.describe() if isinstance(pre, Preprocessing) else ""
    found = None if explicit else torchvision_transforms(module_name, factory, args.weights)
    if found is not None:
        pre, described = found
    try:
        with Image.open(args.image) as img:
            x = pre(img.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise CaptureError(f"Cannot read the image {args.image}: {exc}") from None
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        raise CaptureError(f"The preprocessing gave {type(x).__name__}, not a (3, H, W) tensor.")

    try:
        model = factory(weights=args.weights) if args.weights is not None else factory()
    except Exception as exc:  # the user's factory can raise anything
        raise CaptureError(f"{args.model} failed: {_reason(exc)}") from None
    if not isinstance(model, torch.nn.Module):
        raise CaptureError(f"{args.model} built a {type(model).__name__}, not an nn.Module.")
    model.eval()
    got = capture(model, args.layer, x[None].float(), args.batchnorm)

    folded = f"{got.batchnorm} (eps {got.eps:g})" if got.batchnorm else "none"
    metadata = {
        "onebyone": "capture",
        "model": args.model,
        "weights": str(args.weights),
        "layer": args.layer,
        "batchnorm_folded": folded,
        "preprocessing": described,
        "image": Path(args.image).name,
        "max_abs_difference_to_network": "not checked" if got.check is None else f"{got.check:.3g}",
        "notes": "; ".join(got.notes),
    }
    tensors = {"input": got.input, "weight": got.weight, "bias": got.bias}
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(args.output), metadata)
    except (OSError, RuntimeError) as exc:  # safetensors reports I/O errors as its own
        raise CaptureError(f"Cannot write {args.output}: {_reason(exc)}") from None
    c, h, w = got.input.shape
    k = got.weight.shape[0]
    print(f"wrote {args.output}: input ({c}, {h}, {w}), weight ({k}, {c}), bias ({k},)")
    print(f"  batch norm folded: {folded}")
    print(f"  preprocessing: {described}")
    if got.check is not None:
        where = got.batchnorm or args.layer
        print(f"  W·x + b equals the network's own {where} output to {got.check:.3g}")
    for note in got.notes:
        print(f"  note: {note}")
    return 0


CAPTURE_HELP = f"""\
Save what one 1×1 conv of your own model sees and does, for onebyone.

Builds MODULE:FACTORY (any importable function or class that returns an nn.Module;
called with weights=NAME when --weights is given), puts it in eval mode, runs the
image through it with a forward hook on --layer, and writes one .safetensors file:
  input   (C, H, W)  the layer's input activations (taken with its stride)
  weight  (K, C)     the layer's weight, with the batch norm after it folded in
  bias    (K,)       its bias, folded the same way
plus metadata (model, layer, batch norm folded, preprocessing). Upload that one
file as `input` to POST /api/v1/compare or to the page.

MODULE is imported as Python finds it, then from the working directory: installed
packages come first, so a stray file there (torchvision.py) cannot replace one.

Preprocessing: a torchvision factory with --weights uses those weights'
documented transforms() (torchvision is imported only then). Otherwise the default:
{textwrap.fill(Preprocessing().describe() + ".", 84)}
--resize, --crop, --mean and --std change its steps (and replace torchvision's).
"""


def _settings() -> Settings:
    """The settings (the defaults of the flags), or a message naming each refused one and
    exit 2 (no traceback)."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            where = "_".join(str(part) for part in error["loc"]).upper()
            name = f"ONEBYONE_{where}" if where else "settings"
            print(f"onebyone: error: {name}: {error['msg']}", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    settings = _settings()
    parser = argparse.ArgumentParser(prog="onebyone", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the web service")
    serve.add_argument("--host", default=settings.host, help="default %(default)s (loopback only)")
    serve.add_argument("--port", type=int, default=settings.port, help="default %(default)s")
    serve.add_argument("--workers", type=int, default=1, help="processes; the service is stateless")
    serve.add_argument("--log-level", default="info")
    cap = sub.add_parser(
        "capture",
        help="save a 1×1 layer's input activations and folded weights from your own model",
        description=CAPTURE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cap.add_argument("model", metavar="MODULE:FACTORY", help="e.g. torchvision.models:resnet50")
    cap.add_argument("--weights", metavar="NAME", help="passed as weights=NAME, e.g. DEFAULT")
    cap.add_argument("--layer", required=True, help="the 1×1 conv's module name: layer1.0.conv1")
    cap.add_argument("--image", required=True, type=Path, help="a PNG or JPEG")
    cap.add_argument("-o", "--output", required=True, type=Path, help="the .safetensors to write")
    cap.add_argument(
        "--batchnorm",
        default="auto",
        help="auto (default): the batch norm that takes the layer's output in the forward "
        "pass; none; or a batch norm's module name",
    )
    cap.add_argument("--resize", type=int, metavar="N", help="shorter side to N (0: keep)")
    cap.add_argument("--crop", type=int, metavar="N", help="centre crop N×N (0: none)")
    cap.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"))
    cap.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"))
    args = parser.parse_args(argv)

    if args.command == "capture":
        try:
            sys.exit(_capture_command(args))
        except CaptureError as exc:
            print(f"onebyone capture: error: {exc}", file=sys.stderr)
            sys.exit(2)

    import uvicorn

    from app.protocol import HeadDeadline

    # The flags are settings of the app, which each worker process builds from the
    # environment: it refuses non-loopback Host names when bound to loopback, so it must
    # know the address.
    os.environ["ONEBYONE_HOST"] = args.host
    os.environ["ONEBYONE_PORT"] = str(args.port)
    if args.workers > 1 and "ONEBYONE_TORCH_THREADS" not in os.environ:
        # Workers and their compute slots share the cores: one torch thread per core in all.
        share = args.workers * settings.compute_slots
        os.environ["ONEBYONE_TORCH_THREADS"] = str(max(1, (os.cpu_count() or 1) // share))

    uvicorn.run(
        "app.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,  # the app logs one JSON line per request itself
        # h11, with a deadline on request heads; uvicorn calls the partial as it would the
        # class (and pickles it for worker processes).
        http=cast(
            "type[asyncio.Protocol]",
            functools.partial(HeadDeadline, head_timeout_s=settings.header_timeout_s),
        ),
        # app.drain answers every admitted request by the drain limit; a response already
        # streaming then (a large npz to a slow client) is cut half a second later. (Typed
        # int, used as asyncio.timeout's float.)
        timeout_graceful_shutdown=settings.drain_timeout_s + 0.5,  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
