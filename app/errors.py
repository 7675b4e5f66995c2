"""Domain errors, each bound to the HTTP status the API answers with.

The core raises these; `app.main` turns every one into the single error shape
`{"detail": "..."}`, so no module below the web layer imports FastAPI.
"""

from __future__ import annotations


class OneByOneError(Exception):
    """Base class: a refused request, with a message that says how to fix it."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnreadableFile(OneByOneError):
    """A file that cannot be decoded (truncated, malformed, wrong contents)."""

    status_code = 400


class TooLarge(OneByOneError):
    status_code = 413


class UnsupportedType(OneByOneError):
    status_code = 415


class InvalidContent(OneByOneError):
    """A well-formed request whose content is impossible: shape mismatch, NaN, unknown name."""

    status_code = 422


class DeviceUnavailable(InvalidContent):
    pass


class Busy(OneByOneError):
    """Every compute slot is taken and the queue is full."""

    status_code = 503
