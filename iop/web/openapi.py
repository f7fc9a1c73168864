"""The OpenAPI 3 description of the HTTP API that integrations and kiosks use (iop/web/openapi.yaml)."""
from __future__ import annotations

import functools
from pathlib import Path

import yaml

SOURCE = Path(__file__).with_name("openapi.yaml")


@functools.cache
def document() -> dict:
    return yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
