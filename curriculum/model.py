"""The curriculum's shapes: tracks, modules and their steps, and a loaded catalog of them."""
from __future__ import annotations

from dataclasses import dataclass, field

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
