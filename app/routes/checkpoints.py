"""POST /api/v1/checkpoints/layers: an uploaded checkpoint's 1×1 conv layers, to pick one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app import weights
from app.routes.admission import ComputeRoute
from app.routes.deps import StrictQuery, answers
from app.routes.output import JSONResponse
from app.routes.pipeline import BodyReader, Incoming, Parsed
from app.schemas.requests import LayersRequest
from app.schemas.responses import CheckpointLayers

# Admitted by the compute gate before the (possibly 100 MB) checkpoint is read.
router = APIRouter(
    prefix="/api/v1/checkpoints",
    tags=["checkpoints"],
    dependencies=[StrictQuery],
    route_class=ComputeRoute,
)

LayersBody = Annotated[
    Incoming[LayersRequest],
    Depends(
        BodyReader(
            LayersRequest,
            {
                "weights": "A state dict: .pt/.pth (torch.save, read with weights_only=True; "
                "{'state_dict': …} and {'model': …} wrappers and module./model. prefixes are "
                "fine), .safetensors or .npz."
            },
            required=("weights",),
            json=False,
            spec_example="{}",
        )
    ),
]


@router.post("/layers", response_model=CheckpointLayers, responses=answers(CheckpointLayers))
async def layers(body: LayersBody) -> JSONResponse:
    """List an uploaded checkpoint's 1×1 conv layers: name, K, C, bias, the batch norm after it.

    Send multipart/form-data with the checkpoint as the file part `weights`; pick a layer
    and send it to POST /api/v1/compare as `"weights": {"layer": NAME}`.
    """

    def job(p: Parsed[LayersRequest]) -> CheckpointLayers:
        return weights.listing(p.take("weights"))

    return JSONResponse(await body.run(job))
