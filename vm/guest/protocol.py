"""HTTP plumbing shared by the routes: request fields, JSON errors, the auth and error middlewares.

Every failure answers JSON (`{"status": "error", "error": msg, "message": msg}`: OSWorld's
clients read `error` from /file and `message` elsewhere), never a traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from aiohttp import web

log = logging.getLogger("guest")


class BadRequest(Exception):
    """The request is malformed: 400 with this message."""


class NotFound(Exception):
    """The thing the request names does not exist: 404."""


class Unavailable(Exception):
    """The desktop part needed is not up (yet): 503."""


def error(status: int, message: str, **extra: Any) -> web.Response:
    body = {"status": "error", "error": message, "message": message, **extra}
    return web.json_response(body, status=status)


async def fields(request: web.Request) -> dict[str, Any]:
    """The request's parameters: a JSON object, or form fields; {} for an empty body."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        return {k: v for k, v in form.items()}
    body = await request.read()
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as e:
        raise BadRequest(f"request body is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(data).__name__}")
    return data


def text_field(data: dict[str, Any], name: str, *, required: bool = True, default: str | None = None) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"missing field '{name}' (a non-empty string)")
        return default
    if not isinstance(value, str):
        raise BadRequest(f"field '{name}' must be a string, got {type(value).__name__}")
    return value


def bool_field(data: dict[str, Any], name: str, default: bool = False) -> bool:
    value = data.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no", ""):
        return value.lower() in ("true", "1", "yes")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise BadRequest(f"field '{name}' must be a boolean, got {value!r}")


def seconds_field(data: dict[str, Any], name: str, default: float, *, maximum: float = 86400.0) -> float:
    value = data.get(name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"field '{name}' must be a number of seconds, got {value!r}") from None
    if not 0 < seconds <= maximum:
        raise BadRequest(f"field '{name}' must be in (0, {maximum:g}] seconds, got {seconds:g}")
    return seconds


def command_field(data: dict[str, Any], name: str = "command") -> str | list[str]:
    value = data.get(name)
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise BadRequest(f"field '{name}' must be a non-empty string or list of strings, got {value!r}")


def auth_middleware(token: str | None):
    """401 unless `Authorization: Bearer <token>`; token None = OSWorld-compatible open mode."""
    expected = f"Bearer {token}".encode() if token is not None else None

    @web.middleware
    async def check_token(request: web.Request, handler):
        if expected is not None:
            got = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(got, expected):
                return error(401, "missing or wrong bearer token: send 'Authorization: Bearer <GUEST_TOKEN>'")
        return await handler(request)

    return check_token


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except BadRequest as e:
        return error(400, str(e))
    except NotFound as e:
        return error(404, str(e))
    except Unavailable as e:
        return error(503, str(e))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error(e.status, f"{e.reason}: {request.method} {request.path}")
    except asyncio.CancelledError:
        raise
    except Exception as e:
        log.exception("%s %s failed", request.method, request.path)
        return error(500, f"{type(e).__name__}: {e}")
