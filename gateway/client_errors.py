"""The gateway's errors rebuilt on the client side from a Flight status message (``[code] message``), with the
attributes the message carries (``gateway.client``)."""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import ERRORS_BY_CODE, GatewayError

_CODE = re.compile(r"\[([a-z_]+)\] (.*?)(?:\. Detail: |$)", re.DOTALL)
_POSITION = re.compile(r"at line (\d+), column (\d+)")
_SOURCE = re.compile(r"source '([^']+)'")
_UNKNOWN = re.compile(r"unknown (.+?) '([^']*)'(?:.*?did you mean: (.*?)\?)?", re.DOTALL)


def rebuild_error(exc: BaseException) -> BaseException:
    """The gateway exception encoded in a Flight status message (``[code] message``), else ``exc``.

    Attributes the message carries are restored: ``line``/``column`` of a syntax error, ``source`` of a
    source error, ``kind``/``name``/``nearest`` of an unknown object.
    """
    match = _CODE.search(str(exc))
    if not match:
        return exc
    cls = ERRORS_BY_CODE.get(match.group(1), GatewayError)
    message = match.group(2).strip()
    details: dict[str, Any] = {}
    if (position := _POSITION.search(message)) is not None:
        details["line"], details["column"] = int(position.group(1)), int(position.group(2))
    if (source := _SOURCE.search(message)) is not None:
        details["source"] = source.group(1)
    if cls.code == "unknown_object" and (unknown := _UNKNOWN.search(message)) is not None:
        details["kind"], details["name"] = unknown.group(1), unknown.group(2)
        details["nearest"] = [n.strip() for n in unknown.group(3).split(",")] if unknown.group(3) else []
    error = GatewayError.__new__(cls)
    GatewayError.__init__(error, message, **details)
    for key, value in details.items():
        setattr(error, key, value)
    return error

