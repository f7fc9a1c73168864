"""The curriculum as the server uses it: tracks and modules, loaded once, reloadable.

The validator (curriculum.validate) decides what is loadable; a broken file is reported and
left out, and the rest is served.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from flask import current_app, has_app_context

from curriculum.model import Catalog
from curriculum.validate import load_catalog

TRACKS_DIR = Path(__file__).parent / "tracks"
_lock = threading.Lock()
_loaded: dict[str, Catalog] = {}
log = logging.getLogger(__name__)


def tracks_dir() -> Path:
    """The folder of track folders: the shipped one, or the app's CURRICULUM_DIR (tests use their own)."""
    if has_app_context() and current_app.config.get("CURRICULUM_DIR"):
        return Path(current_app.config["CURRICULUM_DIR"])
    return TRACKS_DIR


def load(root: Path | None = None) -> Catalog:
    """Read every track and module under `root` (validation: curriculum.validate); a broken file is
    reported in .problems and in the log, and left out."""
    result = load_catalog(root or tracks_dir())
    for problem in result.problems:
        log.warning("curriculum: %s", problem)
    return result


def catalog(root: Path | None = None) -> Catalog:
    """The loaded curriculum (loaded on first use, then kept until reload())."""
    root = root or tracks_dir()
    key = str(root)
    with _lock:
        if key not in _loaded:
            _loaded[key] = load(root)
        return _loaded[key]


def reload(root: Path | None = None) -> Catalog:
    """Read the files again (the coordinator's reload page); this process serves the new catalog."""
    root = root or tracks_dir()
    fresh = load(root)
    with _lock:
        _loaded[str(root)] = fresh
    return fresh
