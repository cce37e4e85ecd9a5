"""What one request may hold, and the middleware that holds the body to its byte limit.

A request body is counted as it arrives, not trusted from its Content-Length: a chunked upload of
50 MB without that header once grew the server to 9.4 GB. Rows, images and pixels per request are
bounded too, each refusal answered 413 with the limit it broke.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class RequestLimits:
    max_body_bytes: int = 10 * 1024 * 1024
    max_inputs: int = 10_000  # rows, texts, sequences or images in one request
    max_image_pixels: int = 4096 * 4096  # per image, read from its header before it is decoded


class TooLarge(ValueError):
    """A request over one of the limits (HTTP 413)."""


def check_count(count: int, kind: str, limits: RequestLimits) -> None:
    if count > limits.max_inputs:
        raise TooLarge(f"the request holds {count:,} {kind}; the limit is {limits.max_inputs:,} per request: split it")


def check_pixels(width: int, height: int, index: int, limits: RequestLimits) -> None:
    if width * height > limits.max_image_pixels:
        raise TooLarge(
            f"image {index} is {width}x{height} pixels; the limit is {limits.max_image_pixels:,} pixels per image: "
            "send it resized"
        )


class BodyLimit:
    """ASGI middleware: refuses a body longer than ``max_bytes`` (413), from its Content-Length when
    it has one and by counting the bytes as they arrive otherwise (chunked uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int, on_refused: Callable[[], None]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_refused = on_refused

    def _detail(self, size: str) -> str:
        return f"request body of {size} bytes exceeds the limit of {self.max_bytes:,}: send fewer or smaller inputs"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length", b"").decode()
        if length.isdigit() and int(length) > self.max_bytes:
            self.on_refused()
            await JSONResponse({"detail": self._detail(f"{int(length):,}")}, 413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    self.on_refused()
                    raise HTTPException(413, self._detail(f"more than {self.max_bytes:,}"))
            return message

        await self.app(scope, counted, send)
