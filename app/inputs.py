"""The feature maps of a request: generated, or read from an uploaded file. No HTTP here.

Every compute endpoint (compare and each experiment) gets its maps from `load`, as
float32 numpy (C, H, W) with a name per channel, the ground truth a generator knows, and
where they came from; sizes are checked against the settings before anything is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from app import generators, uploads
from app.config import Settings
from app.errors import InvalidContent, excerpt
from app.schemas.requests import InputSpec
from app.schemas.responses import NetworkInput

if TYPE_CHECKING:
    from app.trained import PhotoFile, Trained

# The generator name of a trained network's maps (app.trained makes them).
NETWORK = "network"

# InputSpec's fields that describe an uploaded file, with the value meaning "not given".
_FILE_OPTIONS = {"layout": "auto", "features": "raw"}


@dataclass(frozen=True)
class Maps:
    """Feature maps and what is known of them."""

    arr: np.ndarray  # (C, H, W) float32
    names: list[str]
    source: str  # generator:NAME, file:FORMAT or network:NAME:PHOTO
    truth: dict[str, np.ndarray] = field(default_factory=dict)  # (H, W) bool masks
    network: NetworkInput | None = None  # what the network saw, for its maps


@dataclass(frozen=True)
class Sources:
    """What the server holds to make maps from, built once at startup: the cache of generated
    maps and the trained network (None where a test or tool needs neither)."""

    generated: generators.Cache | None = None
    trained: Trained | None = None

    def require_trained(self) -> Trained:
        if self.trained is None:
            raise RuntimeError("this app holds no trained network")  # a bug, not a request
        return self.trained


def is_capture(decoded: uploads.Decoded | None) -> bool:
    """Whether a file holds a layer's input and the layer itself, as `onebyone capture`
    writes it: its `input` is the activations and its `weight` (and `bias`) the layer."""
    return decoded is not None and {"input", "weight"} <= decoded.arrays.keys()


def check_size(c: int, h: int, w: int, s: Settings, limit: int | None = None) -> None:
    """Refuse maps over the settings' limits; `limit` caps C·H·W further (experiments)."""
    for name, value, most, env in (
        ("height", h, s.max_height, "MAX_HEIGHT"),
        ("width", w, s.max_width, "MAX_WIDTH"),
        ("channels", c, s.max_channels, "MAX_CHANNELS"),
    ):
        if value > most:
            raise InvalidContent(
                f"The input's {name} is {value}; the limit is {most} (ONEBYONE_{env}).",
                field=f"input.{name}",
                code="over_limit",
            )
    _check_values(c, h, w, s, limit)


def _check_values(c: int, h: int, w: int, s: Settings, limit: int | None) -> None:
    count = c * h * w
    if count > s.max_values:
        raise InvalidContent(
            f"The input has C·H·W = {c}·{h}·{w} = {count} values; the limit is "
            f"{s.max_values} (ONEBYONE_MAX_VALUES). Make it smaller.",
            field="input",
            code="over_limit",
        )
    if limit is not None and count > limit:
        raise over_experiment_limit("input (C·H·W)", count, limit, "input")


def over_experiment_limit(what: str, count: int, limit: int, field: str) -> InvalidContent:
    return InvalidContent(
        f"This experiment takes at most {limit} values in its {what}; it has {count}. "
        "Use a smaller map (ONEBYONE_MAX_EXPERIMENT_VALUES).",
        field=field,
        code="over_limit",
    )


def load(
    spec: InputSpec,
    file: uploads.Decoded | None,
    s: Settings,
    sources: Sources | None = None,
    limit: int | None = None,
    photo: PhotoFile | None = None,
) -> Maps:
    """The maps `spec` asks for, or those of the uploaded `file`; `limit` caps C·H·W (the
    experiments do more per value), checked before anything is converted or generated.
    `photo` is a photo sent for the network's maps."""
    sources = sources or Sources()
    if photo is not None and (spec.generator != NETWORK or file is not None):
        raise InvalidContent(
            'The file part "photo" is a photo for the network\'s maps: send it with '
            '"input": {"generator": "network"} and no input file.',
            field="photo",
            code="needs_network",
        )
    if file is not None:
        return _from_file(spec, file, s, limit)
    for key in ("network", "photo", "layer"):
        if spec.generator != NETWORK and getattr(spec, key) is not None:
            raise InvalidContent(
                f'input.{key} is a parameter of the network generator ("generator": '
                f'"network"), not of {spec.generator}.',
                field=f"input.{key}",
                code="not_for_generator",
            )
    for key, unset in _FILE_OPTIONS.items():
        if getattr(spec, key) != unset:
            raise InvalidContent(
                f"input.{key} describes an uploaded file, but the input is generated "
                f"({spec.generator}); send the file as the multipart part 'input', or leave "
                f"{key} out.",
                field=f"input.{key}",
                code="needs_file",
            )
    if spec.generator == NETWORK:
        # The network decides the size (up to the classifier's 1280 × 7 × 7): only the
        # bounds on values apply, not those on each axis; checked before it runs.
        trained = sources.require_trained()
        layer = trained.layer_of(spec)
        _check_values(layer.in_channels, *layer.size, s, limit)
        return trained.seen(spec, layer, photo)
    if spec.generator not in generators.GENERATORS:
        raise InvalidContent(
            f"Unknown generator {excerpt(spec.generator)}; use one of: "
            f"{', '.join([*generators.GENERATORS, NETWORK])}.",
            field="input.generator",
            code="unknown_name",
        )
    info = generators.find(spec.generator)
    if spec.channels < info.min_channels:
        raise InvalidContent(
            f"The {spec.generator} generator needs channels >= {info.min_channels}.",
            field="input.channels",
            code="out_of_range",
        )
    channels = info.fixed_channels or spec.channels
    check_size(channels, spec.height, spec.width, s, limit)
    g = generators.generate(
        spec.generator,
        channels,
        spec.height,
        spec.width,
        spec.seed,
        spec.generator_params(),
        sources.generated,
    )
    return Maps(g.maps, g.channel_names, f"generator:{spec.generator}", g.truth)


def _from_file(spec: InputSpec, file: uploads.Decoded, s: Settings, limit: int | None) -> Maps:
    raw = uploads.pick(file, "input", "The input file")
    if limit is not None and raw.size > limit:
        raise over_experiment_limit("input (C·H·W)", raw.size, limit, "input")
    arr = uploads.to_chw(raw, file.layout or spec.layout)
    c, h, w = arr.shape
    check_size(c, h, w, s, limit)
    names = [f"channel {i}" for i in range(c)]
    if spec.features == "filterbank":
        if file.format != "image" or c != 3:
            raise InvalidContent(
                'features "filterbank" turns an RGB image into feature maps; '
                f"this input is {file.format} with {c} channels.",
                field="input.features",
                code="needs_rgb_image",
            )
        arr = generators.filter_bank(torch.from_numpy(arr)).numpy()  # (9, H, W)
        names = list(generators.FILTER_BANK)
        check_size(arr.shape[0], h, w, s, limit)
    return Maps(arr, names, f"file:{file.format}")
