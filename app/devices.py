"""The one place that knows which compute devices exist and picks one."""

from __future__ import annotations

from typing import Literal

import torch

from app.errors import DeviceUnavailable

DeviceName = Literal["auto", "cpu", "cuda", "mps"]


def available() -> list[str]:
    """Devices present, best first (CUDA, then MPS, then CPU)."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def describe() -> dict[str, str]:
    """A human name for each device present, for /healthz and the page."""
    names = {"cpu": "CPU"}
    if torch.cuda.is_available():
        names["cuda"] = torch.cuda.get_device_name(0)
    if "mps" in available():
        names["mps"] = "Apple MPS"
    return names


def resolve(requested: str) -> torch.device:
    """The device for a request: `auto` takes the best present; an absent one is refused."""
    present = available()
    if requested == "auto":
        return torch.device(present[0])
    if requested not in ("cpu", "cuda", "mps"):
        raise DeviceUnavailable(f"Unknown device {requested!r}; use one of auto, cpu, cuda, mps.")
    if requested not in present:
        raise DeviceUnavailable(
            f"Device {requested!r} is not available on this server; "
            f'available: {", ".join(present)}. Use "auto" to pick the best one present.'
        )
    return torch.device(requested)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so timings measure the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
