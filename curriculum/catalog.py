"""The curriculum as the server uses it: tracks and modules, loaded once, reloadable.

The validator (curriculum.validate) decides what is loadable; a broken file is reported and
left out, and the rest is served.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app, has_app_context


TRACKS_DIR = Path(__file__).parent / "tracks"
STEP_KINDS = ("check-in", "teaching", "exercise", "discussion", "break", "wrap-up")


@dataclass(frozen=True)
class Step:
    title: str
    kind: str
    minutes: int
    room: str   # what the room display shows
    notes: str  # presenter notes: never sent to a display


@dataclass(frozen=True)
class Module:
    id: str
    title: str
    track: str
    sequence: int
    summary: str
    goals: tuple[str, ...]
    steps: tuple[Step, ...]
    path: str = ""
    steps_line: int = 0  # where `steps:` is in the file, for messages about the steps' minutes

    @property
    def minutes(self) -> int:
        return sum(step.minutes for step in self.steps)


@dataclass(frozen=True)
class Track:
    id: str
    title: str
    description: str


@dataclass
class Catalog:
    tracks: dict[str, Track] = field(default_factory=dict)
    modules: dict[str, Module] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # "file:line: what is wrong"

    def module(self, module_id: str | None) -> Module | None:
        return self.modules.get(module_id or "")

    def track_modules(self, track: str) -> list[Module]:
        """A track's modules in sequence order."""
        return sorted((m for m in self.modules.values() if m.track == track), key=lambda m: m.sequence)


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
    from curriculum.validate import load_catalog

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
