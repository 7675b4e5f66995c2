"""Domain errors, each bound to the HTTP status the API answers with.

The core raises these; `app.main` turns every one into the single error shape
`{"detail": ..., "field": ..., "code": ...}`, so no module below the web layer
imports FastAPI. `field` names the part of the request at fault (`input`,
`input.layout`, `weights.matrix`, `device`, `target`, …) and `code` is a stable,
machine-readable reason a page or a script can act on; `detail` is for people.
"""

from __future__ import annotations

# Longest excerpt of user input an error message may quote.
EXCERPT = 40


def excerpt(value: object, limit: int = EXCERPT) -> str:
    """A short, escaped quotation of user input for an error message (never all of it)."""
    text = value if isinstance(value, str) else str(value)
    cut = text[:limit]
    quoted = ascii(cut) if not cut.isprintable() or not cut.isascii() else repr(cut)
    return quoted + ("…" if len(text) > limit else "")


class Cancelled(Exception):
    """Work stopped because nobody wants its result any more: the client left, the time
    budget ran out, or the server shuts down. Not a refusal: there is no one to answer.

    Raised by `gate.CancelToken.check()` and by long loops in the core (`step`: the
    training step it stopped at, where there is one).
    """

    def __init__(self, reason: str, step: int | None = None) -> None:
        super().__init__(reason if step is None else f"{reason} at step {step}")
        self.reason = reason
        self.step = step


class OneByOneError(Exception):
    """Base class: a refused request, with a message that says how to fix it."""

    status_code = 400
    default_code = "bad_request"

    def __init__(self, detail: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.code = code or self.default_code


class UnreadableFile(OneByOneError):
    """A file or body that cannot be decoded (truncated, malformed, wrong contents)."""

    status_code = 400
    default_code = "unreadable"


class TooLarge(OneByOneError):
    status_code = 413
    default_code = "too_large"


class UnsupportedType(OneByOneError):
    status_code = 415
    default_code = "unsupported_type"


class InvalidContent(OneByOneError):
    """A well-formed request whose content is impossible: shape mismatch, NaN, unknown name."""

    status_code = 422
    default_code = "invalid"


class DeviceUnavailable(InvalidContent):
    default_code = "device_unavailable"

    def __init__(self, detail: str, *, field: str | None = "device", code: str | None = None):
        super().__init__(detail, field=field, code=code)


class TooSlow(OneByOneError):
    """The request body did not arrive within its time (ONEBYONE_BODY_TIMEOUT_S)."""

    status_code = 408
    default_code = "body_timeout"


class Busy(OneByOneError):
    """Every compute slot is taken and the queue is full, or the time budget ran out."""

    status_code = 503
    default_code = "busy"


class NotInstalled(OneByOneError):
    """Data the server itself lacks (the network's weights, a built-in photo): its detail
    says how to install it. Not the client's fault, and retrying will not help."""

    status_code = 503
    default_code = "not_installed"
