"""Seeded feature maps: the generators, the filter bank and the drawn photo.

Every generator returns numpy float32 maps of shape (C, H, W) (torch only for the
filter bank); decoding uploaded files lives in `app.uploads`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.errors import InvalidContent, excerpt
from app.lru import LRU


@dataclass(frozen=True)
class Generated:
    maps: np.ndarray  # (C, H, W) float32
    channel_names: list[str]
    # Ground truth some generators know, e.g. the cat/dog scene's "more cat than dog" mask.
    truth: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return self.maps.nbytes + sum(m.nbytes for m in self.truth.values())


def _smooth_fields(rng: np.random.Generator, n: int, h: int, w: int, scale: float) -> np.ndarray:
    """n spatially smooth random fields with unit standard deviation: (n, H, W) float32.

    White noise low-passed with a Gaussian in the Fourier domain; `scale` is the
    blur radius in pixels, so features are about that wide at any map size. In float32
    with torch's FFT, which is ten times numpy's on these small maps.
    """
    noise = torch.from_numpy(rng.standard_normal((n, h, w), dtype=np.float32))
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    gain = torch.exp(-2.0 * (math.pi * scale) ** 2 * (fy**2 + fx**2))  # (H, W//2+1)
    fields = torch.fft.irfft2(torch.fft.rfft2(noise) * gain, s=(h, w))  # (n, H, W)
    std = fields.reshape(n, -1).std(dim=1, correction=0)
    fields /= torch.where(std > 0, std, 1.0)[:, None, None]
    out: np.ndarray = fields.numpy()
    return out


def _bump(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    """(1 − d²/r²)² inside radius r and exactly 0 outside: evidence with a clear edge."""
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    out: np.ndarray = np.clip(1.0 - d2 / (r * r), 0.0, None) ** 2
    return out


def _cats_and_dogs(rng: np.random.Generator, count: int, h: int, w: int) -> tuple[np.ndarray, ...]:
    """Two non-negative (H, W) maps of `count` bumps each, every dog overlapping a cat.

    Where they overlap both channels are positive, so which animal is stronger
    is a comparison across channels, not something either channel shows alone.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    radius = max(1.5, 0.25 * min(h, w))
    cat, dog = np.zeros((h, w)), np.zeros((h, w))
    for _ in range(count):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        cat += rng.uniform(0.6, 1.0) * _bump(yy, xx, cy, cx, radius * rng.uniform(0.8, 1.2))
        angle = rng.uniform(0, 2 * np.pi)
        dy, dx = 0.8 * radius * np.sin(angle), 0.8 * radius * np.cos(angle)
        r = radius * rng.uniform(0.8, 1.2)
        dog += rng.uniform(0.6, 1.0) * _bump(yy, xx, cy + dy, cx + dx, r)
    return cat, dog


def gaussian(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    # torch's normal sampler draws float32 twice as fast as numpy's (one thread either way).
    gen = torch.Generator().manual_seed(int(rng.integers(2**63)))
    maps = torch.randn((c, h, w), generator=gen).numpy()
    return Generated(maps, [f"noise {i}" for i in range(c)])


def smooth(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    rank = min(int(p["rank"]), c)
    latent = _smooth_fields(rng, rank, h, w, float(p["scale"]))  # (R, H, W)
    # Pattern j has weight (j+1)^-0.75: a decaying spectrum, as in real activations, so
    # a few directions carry most of the variance and each further one carries less.
    strength = np.arange(1, rank + 1) ** -0.75
    mix = (rng.standard_normal((c, rank)) * strength).astype(np.float32)  # (C, R)
    maps = (torch.from_numpy(mix) @ torch.from_numpy(latent).reshape(rank, h * w)).numpy()
    maps = maps.reshape(c, h, w)  # (C, H, W)
    maps += np.float32(p["noise"]) * rng.standard_normal((c, h, w), dtype=np.float32)
    return Generated(maps, [f"smooth {i}" for i in range(c)])


def nonnegative(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    # What an earlier layer's ReLU hands on: smooth activations with the negatives cut.
    g = smooth(rng, c, h, w, p)
    return Generated(np.maximum(g.maps, 0.0), [f"post-ReLU {i}" for i in range(c)])


def catdog(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    if c < 2:
        raise InvalidContent(
            "The catdog generator needs channels >= 2 (0: cat, 1: dog).",
            field="input.channels",
            code="out_of_range",
        )
    blobs = int(p["blobs"])
    cat, dog = _cats_and_dogs(rng, blobs, h, w)
    maps = np.empty((c, h, w), dtype=np.float32)
    maps[0], maps[1] = cat, dog
    if c > 2:
        maps[2:] = 0.5 * _smooth_fields(rng, c - 2, h, w, 0.08 * min(h, w))
    names = ["cat evidence", "dog evidence"] + [f"distractor {i}" for i in range(2, c)]
    # Compared in float32, as the 1×1 conv sees them.
    return Generated(maps, names, {"cat_over_dog": maps[0] > maps[1]})


def edges(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    """Piecewise-constant maps: each channel a few axis-aligned rectangles on a flat level.

    Inside a flat region every pixel has the same channel vector, so any 1×1 conv
    is flat there too: only a layer that sees neighbours can find the edges.
    """
    maps = np.empty((c, h, w), dtype=np.float32)
    for i in range(c):
        maps[i] = rng.uniform(-0.5, 0.5)
        for _ in range(int(p["rectangles"])):
            y0, y1 = sorted(rng.integers(0, h + 1, size=2))
            x0, x1 = sorted(rng.integers(0, w + 1, size=2))
            maps[i, y0:y1, x0:x1] = rng.uniform(-1.0, 1.0)
    return Generated(maps, [f"shapes {i}" for i in range(c)], {"edge": edge_mask(maps)})


def edge_mask(maps: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels that differ from a 4-neighbour in some channel of (C, H, W)."""
    h, w = maps.shape[1:]
    diff = np.zeros((h, w), dtype=bool)
    vertical = np.any(maps[:, 1:, :] != maps[:, :-1, :], axis=0)
    horizontal = np.any(maps[:, :, 1:] != maps[:, :, :-1], axis=0)
    diff[1:, :] |= vertical
    diff[:-1, :] |= vertical
    diff[:, 1:] |= horizontal
    diff[:, :-1] |= horizontal
    return diff


def photo(rng: np.random.Generator, c: int, h: int, w: int, p: dict[str, Any]) -> Generated:
    rgb = sample_photo(h, w, int(rng.integers(2**31)))
    maps = filter_bank(torch.from_numpy(rgb)).numpy()
    return Generated(np.ascontiguousarray(maps), list(FILTER_BANK))


@dataclass(frozen=True)
class GeneratorInfo:
    make: Callable[[np.random.Generator, int, int, int, dict[str, Any]], Generated]
    description: str
    # Extra parameters: name -> (default, minimum, maximum, what it does).
    params: dict[str, tuple[float, float, float, str]] = field(default_factory=dict)
    min_channels: int = 1
    # Set where the generator decides the channel count itself.
    fixed_channels: int | None = None


_SMOOTH_PARAMS = {
    "rank": (128, 1, 1024, "independent spatial patterns mixed; pattern j has weight (j+1)^-0.75"),
    "scale": (2.0, 0.0, 64.0, "blur radius of the patterns, in pixels"),
    "noise": (0.02, 0.0, 10.0, "standard deviation of independent per-channel noise"),
}

GENERATORS: dict[str, GeneratorInfo] = {
    "gaussian": GeneratorInfo(gaussian, "Signed Gaussian noise, N(0, 1): ReLU zeroes about half."),
    "catdog": GeneratorInfo(
        catdog,
        "Channel 0 is cat evidence, channel 1 dog evidence, as overlapping blobs; further "
        "channels are distractors. Its ground truth marks the pixels where cat > dog.",
        {"blobs": (2, 1, 32, "blobs of each animal; each dog overlaps a cat")},
        min_channels=2,
    ),
    "smooth": GeneratorInfo(
        smooth,
        "Smooth, correlated signed maps of low effective rank across channels, like real "
        "activations: a few channels' worth of variance spread over all of them.",
        _SMOOTH_PARAMS,
    ),
    "nonnegative": GeneratorInfo(
        nonnegative,
        "The smooth maps after a ReLU, as an earlier layer would hand them on: ReLU-only "
        "changes nothing here.",
        _SMOOTH_PARAMS,
    ),
    "edges": GeneratorInfo(
        edges,
        "Piecewise-constant rectangles: a spatial pattern whose edges only a layer that "
        "sees neighbours (3×3) can find.",
        {"rectangles": (3, 0, 64, "rectangles per channel")},
    ),
    "photo": GeneratorInfo(
        photo,
        "A small outdoor scene drawn at run time (sky, sun, hills, a house), turned into 9 "
        "signed early-vision feature maps by a fixed filter bank: luminance, two colour-"
        "opponent channels, edges at 0/45/90/135°, centre-surround at two scales. "
        "channels is fixed at 9.",
        fixed_channels=9,
    ),
}


def find(name: str) -> GeneratorInfo:
    """The registered generator called `name`, or a 422 listing the ones that exist."""
    info = GENERATORS.get(name)
    if info is None:
        raise InvalidContent(
            f"Unknown generator {excerpt(name)}; use one of: {', '.join(GENERATORS)}.",
            field="input.generator",
            code="unknown_name",
        )
    return info


class Cache(LRU[tuple[Any, ...], Generated]):
    """The last generated maps, least recently used first out, within `limit` bytes.

    A learner editing weights asks for the same input again and again; generating 192
    smooth maps costs more than the 1×1 conv itself. Hits are copies: what is cached
    is never handed out to be changed.
    """

    def get(self, key: tuple[Any, ...]) -> Generated | None:
        hit = super().get(key)
        return None if hit is None else _copy(hit)

    def put(self, key: tuple[Any, ...], value: Generated) -> None:
        if value.nbytes <= self.limit:  # one over the limit is not kept, nor copied
            super().put(key, _copy(value))


def _copy(g: Generated) -> Generated:
    return replace(g, maps=g.maps.copy(), truth={k: v.copy() for k, v in g.truth.items()})


def generate(
    name: str,
    c: int,
    h: int,
    w: int,
    seed: int,
    params: dict[str, Any],
    cache: Cache | None = None,
) -> Generated:
    """Seeded maps from the named generator; `params` holds only the parameters given."""
    info = find(name)
    for key in params:
        if key not in info.params:
            takes = ", ".join(info.params) or "no parameters of its own"
            raise InvalidContent(
                f"{key} is not a parameter of the {name} generator; it takes {takes}.",
                field=f"input.{key}",
                code="not_for_generator",
            )
    resolved: dict[str, Any] = {}
    for key, (default, lo, hi, _) in info.params.items():
        value = params.get(key)
        value = default if value is None else value
        if not lo <= value <= hi:
            raise InvalidContent(
                f"Generator {name!r}: {key} must be between {lo} and {hi}; got {value}.",
                field=f"input.{key}",
                code="out_of_range",
            )
        resolved[key] = value

    def make() -> Generated:
        return info.make(np.random.default_rng(seed), c, h, w, resolved)

    if cache is None:
        return make()
    return cache.get_or_compute((name, c, h, w, seed, tuple(sorted(resolved.items()))), make)


# ---------------------------------------------------------------- filter bank and photo

FILTER_BANK = [
    "luminance",
    "red − green",
    "blue − yellow",
    "edges 0°",
    "edges 45°",
    "edges 90°",
    "edges 135°",
    "centre − surround (fine)",
    "centre − surround (coarse)",
]


def _gaussian(sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * sigma * sigma))
    return g / g.sum()


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, 1, H, W), reflecting at the border."""
    g = _gaussian(sigma).to(img.device)
    r = g.numel() // 2
    out = F.conv2d(F.pad(img, (r, r, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
    return F.conv2d(F.pad(out, (0, 0, r, r), mode="replicate"), g.view(1, 1, -1, 1))


def filter_bank(rgb: torch.Tensor) -> torch.Tensor:
    """(3, H, W) RGB in [0, 1] -> (9, H, W) signed feature maps, named in FILTER_BANK.

    Luminance and two colour-opponent channels (as in the retina and V1), oriented
    first derivatives of a slightly blurred luminance at four angles, and two
    difference-of-Gaussians (centre − surround) at two scales. Each map is centred
    and scaled to unit standard deviation, as a network's normalisation would.
    """
    r, g, b = rgb[0], rgb[1], rgb[2]
    lum = 0.299 * r + 0.587 * g + 0.114 * b
    maps = [lum, r - g, b - 0.5 * (r + g)]
    smooth = _blur(lum[None, None], 1.0)
    dy = F.pad(smooth, (0, 0, 1, 1), mode="replicate")
    dx = F.pad(smooth, (1, 1, 0, 0), mode="replicate")
    gy = 0.5 * (dy[..., 2:, :] - dy[..., :-2, :])[0, 0]
    gx = 0.5 * (dx[..., :, 2:] - dx[..., :, :-2])[0, 0]
    for angle in (0.0, 45.0, 90.0, 135.0):
        a = math.radians(angle)
        maps.append(math.cos(a) * gx + math.sin(a) * gy)
    for centre, surround in ((1.0, 3.0), (2.5, 8.0)):
        dog = _blur(lum[None, None], centre) - _blur(lum[None, None], surround)
        maps.append(dog[0, 0])
    out = torch.stack(maps)  # (9, H, W)
    flat = out.reshape(out.shape[0], -1)
    mean = flat.mean(dim=1, keepdim=True)
    std = flat.std(dim=1, keepdim=True).clamp_min(1e-6)
    return ((flat - mean) / std).reshape(out.shape)


def sample_photo(h: int, w: int, seed: int) -> np.ndarray:
    """A small outdoor scene drawn by the project at run time: (3, H, W) RGB in [0, 1].

    Sky gradient, a sun, two hills, a house with a roof, a door and a window, and a
    little sensor noise: colour regions, straight and curved edges, textures.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    v, u = yy / h, xx / w
    img = np.empty((3, h, w))
    img[0], img[1], img[2] = 0.45 + 0.3 * v, 0.65 + 0.2 * v, 0.95 - 0.1 * v  # sky
    sun = (u - 0.8) ** 2 + (v - 0.18) ** 2 < 0.08**2
    img[:, sun] = np.array([1.0, 0.85, 0.3])[:, None]
    hill1 = v > 0.62 + 0.08 * np.sin(6 * u + 1)
    hill2 = v > 0.72 + 0.05 * np.cos(9 * u)
    img[:, hill1] = np.array([0.35, 0.6, 0.25])[:, None]
    img[:, hill2] = np.array([0.25, 0.5, 0.2])[:, None]
    wall = (u > 0.2) & (u < 0.45) & (v > 0.5) & (v < 0.8)
    roof = (v <= 0.5) & (v > 0.35) & (np.abs(u - 0.325) < (v - 0.35) * 1.1)
    img[:, wall] = np.array([0.85, 0.75, 0.6])[:, None]
    img[:, roof] = np.array([0.6, 0.2, 0.15])[:, None]
    door = (u > 0.3) & (u < 0.35) & (v > 0.65) & (v < 0.8)
    window = (u > 0.37) & (u < 0.42) & (v > 0.56) & (v < 0.63)
    img[:, door] = np.array([0.35, 0.2, 0.1])[:, None]
    img[:, window] = np.array([0.55, 0.8, 0.95])[:, None]
    img += 0.02 * rng.standard_normal(img.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32)
