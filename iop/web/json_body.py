"""JSON request bodies: whatever shape arrives, the answer is a 400 `bad_request`, never a 500."""
from __future__ import annotations

import math

from flask import request
from flask.json.provider import DefaultJSONProvider


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("a number too large for JSON")
    return number


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


class RequestJSONProvider(DefaultJSONProvider):
    """Flask's JSON, read strictly: a body nested too deeply to decode, a number beyond a float (1e999)
    and NaN or Infinity (which JSON does not have) are bad JSON like any other.

    Python's decoder raises RecursionError (not ValueError) at about a thousand levels, which Flask
    does not treat as a bad body: `[[[[...` two thousand deep was a 500."""

    def loads(self, s, **kwargs):
        kwargs.setdefault("parse_float", _finite)
        kwargs.setdefault("parse_constant", _no_constants)
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        _refuse_lone_surrogates(value)
        return value


def _refuse_lone_surrogates(value) -> None:
    """"\\ud800" decodes to text no database or file can take (it is not Unicode): refuse it here."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("JSON text with a lone surrogate") from None
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def json_object() -> dict | None:
    """The request's body when it is a JSON object; None for anything else (bad JSON, invalid UTF-8,
    an array, a number, nothing at all)."""
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else None


def sends_json() -> bool:
    """A request that writes and says its body is JSON (a staff page's script, a kiosk)."""
    return request.is_json and request.method not in ("GET", "HEAD", "OPTIONS")
