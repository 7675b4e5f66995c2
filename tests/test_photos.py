"""The built-in photos: found in the installed packages, checked by sha256, decoded within
a bound; each has what it shows, its source and its licence."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from app import packaged, photos
from app.errors import InvalidContent, TooLarge

SIZES = {  # (W, H), as the packages' documentation gives them
    "chelsea": (451, 300),
    "coffee": (600, 400),
    "astronaut": (512, 512),
    "rocket": (640, 427),
    "grace_hopper": (512, 600),
}


def test_at_least_three_photos_each_with_what_it_shows_source_and_licence() -> None:
    assert set(photos.PHOTOS) == set(SIZES)
    for p in photos.PHOTOS.values():
        assert p.shows and p.credit and p.licence and p.source.startswith(p.distribution)
        assert ("CC0" in p.licence) or ("Public domain" in p.licence)


@pytest.mark.parametrize("name", list(SIZES))
def test_each_photo_is_installed_checked_and_decoded_to_rgb(name: str) -> None:
    photo = photos.PHOTOS[name]
    path = packaged.find(photo.distribution, photo.path)
    assert path is not None, photos.problem(photo)
    assert packaged.sha256_file(path) == photo.sha256
    assert hashlib.sha256(photos.read(photo)).hexdigest() == photo.sha256
    assert photos.problem(photo) is None
    img = photos.load(name, 16 * 1024 * 1024)
    assert (img.mode, img.size) == ("RGB", SIZES[name])
    assert np.asarray(img).std() > 20  # a photograph, not a blank


def test_an_unknown_photo_gets_close_names() -> None:
    with pytest.raises(InvalidContent) as e:
        photos.find("chelsey")
    assert (e.value.code, e.value.field) == ("unknown_name", "input.photo")
    assert "Did you mean chelsea" in e.value.detail and "grace_hopper" in e.value.detail


def test_a_photo_over_the_pixel_bound_is_refused_before_decoding() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200)).save(buf, "PNG")
    with pytest.raises(TooLarge) as e:  # 413, as for every upload over a limit
        photos.decode(buf.getvalue(), 300 * 200 - 1, "test")
    assert e.value.code == "too_large" and "300×200" in e.value.detail
    assert photos.decode(buf.getvalue(), 300 * 200, "test").size == (300, 200)


def test_a_decoded_photo_outlives_its_file() -> None:
    data = photos.read(photos.PHOTOS["coffee"])
    img = photos.decode(data, 10**7, "coffee")  # the file it came from is closed
    with Image.open(io.BytesIO(data)) as again:
        assert np.array_equal(np.asarray(img), np.asarray(again.convert("RGB")))
