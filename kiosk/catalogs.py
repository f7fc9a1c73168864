"""The kiosk's words in English and Spanish (kiosk/i18n/*.json; a test checks they have the same keys)."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from flask import request

LANGUAGES = ("en", "es")
DEFAULT = "en"
LANG_COOKIE = "iop_kiosk_lang"
FOLDER = Path(__file__).with_name("i18n")


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    return json.loads((FOLDER / f"{lang}.json").read_text(encoding="utf-8"))


def all_catalogs() -> dict[str, dict[str, str]]:
    return {lang: catalog(lang) for lang in LANGUAGES}


def request_lang() -> str:
    """The kiosk's chosen language (a cookie its page sets), else the browser's, else English."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT


def words(key: str, lang: str | None = None) -> str:
    lang = lang or request_lang()
    return catalog(lang).get(key) or catalog(DEFAULT).get(key, "")


def error_message(code: str, lang: str | None = None) -> str:
    return words(f"error.{code}", lang) or words("error.bad_request", lang)
