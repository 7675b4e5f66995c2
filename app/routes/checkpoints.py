"""POST /api/v1/checkpoints/layers: an uploaded checkpoint's 1×1 conv layers, to pick one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app import uploads, weights
from app.errors import InvalidContent
from app.routes.admission import ComputeRoute
from app.routes.bodies import parse_body, receive_body
from app.routes.deps import ERRORS, SettingsDep, StrictQuery, TicketDep
from app.schemas import BatchNormInfo, CheckpointLayer, CheckpointLayers, LayersRequest

# Admitted by the compute gate before the (possibly 100 MB) checkpoint is read.
router = APIRouter(
    prefix="/api/v1/checkpoints",
    tags=["checkpoints"],
    dependencies=[StrictQuery],
    route_class=ComputeRoute,
)


EXAMPLE: dict[str, Any] = {
    "format": "pt",
    "wrappers": [],
    "layers": [
        {
            "name": "layer1.0.conv1",
            "out_channels": 64,
            "in_channels": 64,
            "bias": False,
            "batchnorm": {"name": "layer1.0.bn1", "channels": 64, "affine": True},
        },
        {
            "name": "layer1.0.conv3",
            "out_channels": 256,
            "in_channels": 64,
            "bias": False,
            "batchnorm": {"name": "layer1.0.bn3", "channels": 256, "affine": True},
        },
        {
            "name": "layer1.0.downsample.0",
            "out_channels": 256,
            "in_channels": 64,
            "bias": False,
            "batchnorm": {"name": "layer1.0.downsample.1", "channels": 256, "affine": True},
        },
    ],
    "other_convs": 17,
    "batchnorms": 53,
}

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["weights"],
                    "properties": {
                        "weights": {
                            "type": "string",
                            "format": "binary",
                            "description": "A state dict: .pt/.pth (torch.save, read with "
                            "weights_only=True; {'state_dict': …} and {'model': …} wrappers and "
                            "module./model. prefixes are fine), .safetensors or .npz.",
                        },
                        "spec": {"type": "string", "description": "Optional; '{}' for now."},
                    },
                }
            }
        },
    }
}


@router.post(
    "/layers",
    response_model=CheckpointLayers,
    responses={200: {"content": {"application/json": {"example": EXAMPLE}}}, **ERRORS},
    openapi_extra=_BODY,
)
async def layers(request: Request, settings: SettingsDep, ticket: TicketDep) -> CheckpointLayers:
    """List an uploaded checkpoint's 1×1 conv layers: name, K, C, bias, the batch norm after it.

    Send multipart/form-data with the checkpoint as the file part `weights`; pick a layer
    and send it to POST /api/v1/compare as `"weights": {"layer": NAME}`.
    """
    received = await receive_body(request, settings, ticket)

    def job() -> CheckpointLayers:
        # Decoding a checkpoint is work like any other: inside a compute slot, off the loop.
        _, files = parse_body(received, LayersRequest, ("weights",), "weights", settings)
        decoded = files["weights"]
        if decoded is None:
            raise InvalidContent(
                "Send the checkpoint as multipart/form-data, in the file part 'weights' "
                "(curl -F weights=@model.pt).",
                field="weights",
                code="missing",
            )
        return _listing(decoded)

    return await ticket.run(job, request.receive)


def _listing(decoded: uploads.Decoded) -> CheckpointLayers:
    ckpt, ones = weights.file_layers(decoded)
    out = []
    for conv in ones:
        found = ckpt.follows(conv.name)
        bn = ckpt.batchnorms[found] if found is not None else None
        out.append(
            CheckpointLayer(
                name=conv.name,
                out_channels=conv.k,
                in_channels=conv.c,
                bias=conv.bias is not None,
                batchnorm=None
                if bn is None
                else BatchNormInfo(name=bn.name, channels=bn.channels, affine=bn.affine),
            )
        )
    return CheckpointLayers(
        format=decoded.format,
        wrappers=list(ckpt.stripped),
        layers=out,
        other_convs=sum(not c.is_1x1 for c in ckpt.convs.values()),
        batchnorms=len(ckpt.batchnorms),
        # Read as compare.run reads it: a file with input and weight is activations + layer.
        input=list(decoded.arrays["input"].shape)
        if {"input", "weight"} <= decoded.arrays.keys()
        else None,
    )
