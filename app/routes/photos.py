"""GET /api/v1/photos/{name}: a built-in photo as shipped, or the 224×224 crop a network sees."""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app import network, photos
from app.routes.deps import ERRORS, SettingsDep, StrictQuery

router = APIRouter(prefix="/api/v1/photos", tags=["network"], dependencies=[StrictQuery])

_MEDIA = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg"}


@router.get(
    "/{name}",
    response_class=Response,
    responses={
        200: {
            "description": "The photo: its file as the package ships it, or the crop.",
            "content": {"image/png": {}, "image/jpeg": {}},
        },
        **{code: ERRORS[code] for code in (422, 503)},
    },
)
def photo(
    name: str,
    settings: SettingsDep,
    view: Annotated[
        Literal["file", "crop"],
        Query(
            description="file: the photo as shipped; crop: the 224×224 PNG the network sees "
            "(resized and centre-cropped as torchvision does, before normalisation)."
        ),
    ] = "file",
) -> Response:
    """A built-in photo (GET /api/v1/catalogue lists them with their source and licence)."""
    data, media = _rendered(photos.find(name, field="name").name, view, settings.max_image_pixels)
    return Response(data, media_type=media, headers={"Cache-Control": "public, max-age=86400"})


# Five photos, two views, about 3 MB in all: made once, so asking again costs nothing.
@lru_cache(maxsize=2 * len(photos.PHOTOS))
def _rendered(name: str, view: str, max_pixels: int) -> tuple[bytes, str]:
    data = photos.read(photos.PHOTOS[name])  # checked by its sha256
    if view == "file":
        return data, next(m for magic, m in _MEDIA.items() if data.startswith(magic))
    buf = io.BytesIO()
    network.crop(photos.decode(data, max_pixels, name)).save(buf, "PNG")
    return buf.getvalue(), "image/png"
