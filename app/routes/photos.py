"""GET /api/v1/photos/{name}: a built-in photo as shipped, or the 224×224 crop a network sees."""

from __future__ import annotations

import io
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
    found = photos.find(name, field="name")
    data = photos.read(found)
    headers = {"Cache-Control": "public, max-age=86400"}
    if view == "file":
        media = next(m for magic, m in _MEDIA.items() if data.startswith(magic))
        return Response(data, media_type=media, headers=headers)
    buf = io.BytesIO()
    network.crop(photos.decode(data, settings.max_image_pixels, found.name)).save(buf, "PNG")
    return Response(buf.getvalue(), media_type="image/png", headers=headers)
