"""One road for every compute route's input: admitted, received, then parsed in a compute slot.

A compute route declares what it takes, its request model and its file parts, as one
`Annotated` dependency on a `BodyReader`:

    FitBody = Annotated[Incoming[FitRequest], Depends(BodyReader(FitRequest, {"input": …}))]

The reader receives the body within the request's admission (routes.receiving: spooled,
within its byte and time limits) and hands the route an `Incoming`. `Incoming.run(job)`
runs `job(parsed)` in a compute slot, where the body is first parsed strictly (JSON, or
multipart split and its files decoded) into a typed `Parsed`: the cost of parsing is
bounded by the number of slots, like any other work. The same reader writes the route's
request-body documentation, and `ComputeRoute` refuses a route without one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from pydantic import BaseModel

from app import trained, uploads
from app.config import Settings
from app.errors import InvalidContent
from app.gate import Ticket
from app.routes import multipart
from app.routes.receiving import Body, receive_body
from app.routes.validation import parse_spec

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

# Where ComputeRoute leaves a request's admission ticket, and its body's plan (what its
# headers said, checked before admission), in the ASGI scope.
TICKET = "onebyone.ticket"
PLAN = "onebyone.plan"

# How every POST body is read; shown at the top of /docs (app.main) and kept true by the
# tests of this module, routes.validation, routes.multipart and tests/test_contract.py.
REQUEST_RULES = """
**How requests are read.** Strict where leniency could only hide a mistake:

- A body needs `Content-Type: application/json` or `multipart/form-data` (415 otherwise);
  an empty POST with no Content-Type takes every default.
- Numbers are JSON numbers: `true` or `"28"` where an integer belongs is a 422, and so is
  `28.0`; a float field takes integers.
- Unknown fields are a 422 whose `detail` lists the fields that exist there (`code`
  `unknown_field`); a JSON key repeated in one object is a 400 (`duplicate_key`); a multipart
  part sent twice (`repeated_part`) and a query parameter given twice (`repeated_parameter`) or
  unknown to the endpoint (`unknown_parameter`) are 422s.
- Multipart: the endpoint's file parts (`input`, and `weights`, `target` or `photo`) and an
  optional `spec` part with the same fields as the JSON body; `layout` may stand at the top
  level of `spec` or inside its `input` (if both, they must agree). A body cut short before
  its closing boundary is a 400.
- Files are recognised by their content: .npy, .npz, .pt/.pth (`torch.load(weights_only=
  True)`), .safetensors, PNG, JPEG. A known extension on content that does not parse is a 400;
  an unknown type a 415; nothing is ever unpickled. Images of every bit depth are scaled to
  [0, 1] by their largest code.
- Every refusal is `{"detail", "field", "code"}`: `detail` for people, `field` the dotted path
  of what was wrong (`input.height`, `weights.matrix`, `device`, …), `code` a stable reason.
"""


@dataclass(frozen=True)
class Parsed(Generic[M]):
    """A request as its route uses it: the spec, its decoded files, and what parsing took."""

    spec: M
    files: dict[str, uploads.Decoded | None]
    decode_ms: float
    photos: dict[str, trained.PhotoFile | None] = field(default_factory=dict)

    def take(self, name: str) -> uploads.Decoded | None:
        """Part `name`'s decoded file, handed over: the request keeps no reference to it, so
        a checkpoint's other tensors can be let go once its layer is built."""
        return self.files.pop(name, None)

    def photo(self, name: str = "photo") -> trained.PhotoFile | None:
        return self.photos.get(name)


class Incoming(Generic[M]):
    """A received body, to be parsed in a compute slot by the route's job (`run`)."""

    def __init__(
        self,
        reader: BodyReader[M],
        body: Body,
        ticket: Ticket,
        settings: Settings,
        request: Request,
    ) -> None:
        self.reader = reader
        self.body = body
        self.ticket = ticket
        self.settings = settings
        self.request = request
        self._parsed: Parsed[M] | None = None

    def parsed(self) -> Parsed[M]:
        """The body parsed strictly (once; a route may run several jobs). In a compute slot."""
        if self._parsed is None:
            self._parsed = self.reader.parse(self.body, self.settings, self.ticket.token)
        return self._parsed

    async def run(self, job: Callable[[Parsed[M]], T], *, watch: bool = True) -> T:
        """`job(parsed)` in a compute slot, within the request's time budget; given up (and
        its work told to stop) when the client disconnects. `watch=False` once a streaming
        response listens for the disconnect itself."""
        receive = self.request.receive if watch else None
        return await self.ticket.run(lambda: job(self.parsed()), receive)


class BodyReader(Generic[M]):
    """A compute route's body: its request model, its file parts (name → what they hold),
    its photo parts (PNG or JPEG for the network), the parts of which a multipart body must
    carry one, and whether a JSON body is taken at all."""

    def __init__(
        self,
        model: type[M],
        files: Mapping[str, str] | None = None,
        *,
        photos: Mapping[str, str] | None = None,
        required: tuple[str, ...] = (),
        json: bool = True,
        spec_example: str = '{"device": "cpu"}',
    ) -> None:
        self.model = model
        self.files = dict(files or {})
        self.photos = dict(photos or {})
        self.required = required
        self.json = json
        self.spec_example = spec_example

    async def __call__(self, request: Request) -> Incoming[M]:
        settings: Settings = request.app.state.settings
        ticket: Ticket = request.scope[TICKET]
        body = await receive_body(request, request.scope[PLAN], settings, ticket)
        return Incoming(self, body, ticket, settings, request)

    def parse(
        self, body: Body, settings: Settings, stop: threading.Event | None = None
    ) -> Parsed[M]:
        """The spec and its decoded files (None where a part is absent); decoding stops
        (errors.Cancelled) once `stop` is set."""
        started = time.perf_counter()
        files: dict[str, uploads.Decoded | None] = dict.fromkeys(self.files)
        photos: dict[str, trained.PhotoFile | None] = dict.fromkeys(self.photos)
        if body.kind == "multipart":
            spec = self._multipart(body, files, photos, settings, stop)
        elif self.required and not self.json:
            raise InvalidContent(
                f"Send multipart/form-data with the file in a part named {self.required[0]!r} "
                f"(curl -F {self.required[0]}=@FILE).",
                field=self.required[0],
                code="missing",
            )
        elif body.kind == "json":
            spec = parse_spec(self.model, body.spool.read(), "JSON body", settings.max_json_values)
        else:
            spec = self.model()  # nothing sent: every default
        return Parsed(spec, files, (time.perf_counter() - started) * 1e3, photos)

    def _multipart(
        self,
        body: Body,
        files: dict[str, uploads.Decoded | None],
        photos: dict[str, trained.PhotoFile | None],
        settings: Settings,
        stop: threading.Event | None,
    ) -> M:
        parts: dict[str, multipart.Part] = {}
        allowed = {*self.files, *self.photos, "spec"}
        try:
            multipart.split(body, parts, allowed, settings.max_spec_bytes)
            if self.required and not parts.keys() & set(self.required):
                named = " or ".join(repr(r) for r in self.required)
                raise InvalidContent(
                    f"The multipart body needs a file part named {named}.",
                    field=self.required[0],
                    code="missing",
                )
            # The spec's bytes as they came: not UTF-8 is a 400, as for a JSON body.
            spec_part = parts.get("spec")
            spec_text = b"" if spec_part is None else spec_part.data.read()
            spec = parse_spec(self.model, spec_text, "spec part", settings.max_json_values)
            for name in self.files:
                files[name] = _decode(parts.get(name), name, settings, stop)
            for name in self.photos:
                if (data := _file_bytes(parts.get(name), name)) is not None:
                    photos[name] = trained.photo_file(
                        data, parts[name].filename, settings.max_image_pixels
                    )
        finally:
            for part in parts.values():
                part.data.close()
        return spec

    def openapi(self) -> dict[str, Any]:
        """The route's request body for OpenAPI, from its model and its file parts."""
        content: dict[str, Any] = {}
        if self.json:
            content["application/json"] = {
                "schema": {"$ref": f"#/components/schemas/{self.model.__name__}"},
                "examples": getattr(self.model, "EXAMPLES", {}),
            }
        props: dict[str, Any] = {
            part: {"type": "string", "format": "binary", "description": text}
            for part, text in {**self.files, **self.photos}.items()
        }
        props["spec"] = {
            "type": "string",
            "description": "JSON with the same fields as the JSON body, for what the files "
            "do not give",
            "example": self.spec_example,
        }
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if len(self.required) == 1:
            schema["required"] = list(self.required)
        elif self.required:
            schema["anyOf"] = [{"required": [name]} for name in self.required]
        content["multipart/form-data"] = {"schema": schema}
        return {"requestBody": {"required": not self.json, "content": content}}


def _file_bytes(part: multipart.Part | None, name: str) -> bytearray | None:
    """A file part's bytes (None when it was not sent); the part lets go of them."""
    if part is None:
        return None
    if part.filename is None:
        raise InvalidContent(
            f"The multipart part {name!r} must be a file, not a text field.",
            field=name,
            code="not_a_file",
        )
    data = part.data.read()
    part.data.close()  # its bytes are in `data` now
    return data


def _decode(
    part: multipart.Part | None, name: str, settings: Settings, stop: threading.Event | None
) -> uploads.Decoded | None:
    data = _file_bytes(part, name)
    if data is None or part is None:
        return None
    return uploads.decode(
        data,
        name,
        part.filename,
        max_values=settings.max_values,
        max_pixels=settings.max_image_pixels,
        max_side=(settings.max_height, settings.max_width),
        stop=stop,
    )


def document_request_models(app: FastAPI, readers: list[BodyReader[Any]]) -> None:
    """Put the request models the readers refer to into the OpenAPI components.

    The readers parse their bodies themselves, so FastAPI does not see the models; the
    request bodies the readers document refer to them by name.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in dict.fromkeys(r.model for r in readers if r.json):
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in js.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = js
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
