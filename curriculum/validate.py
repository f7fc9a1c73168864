"""Reads and checks the module files: each problem names the file, the line and what is wrong.

Counselors edit these files in a text editor, so a message must say where to look and what to
change. A file with any problem is left out of the catalog (and reported); the rest is served.
Line numbers come from PyYAML's node marks (compose first, then construct from the same nodes).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from curriculum import markup
from curriculum.model import STEP_KINDS, Catalog, Module, Step, Track

MIN_STEPS, MAX_STEPS = 5, 9
MIN_MODULE_MINUTES, MAX_MODULE_MINUTES = 90, 180  # a group runs 90 minutes to 3 hours
MAX_STEP_MINUTES = 90
ROOM_MAX_WORDS, ROOM_MAX_CHARS = 60, 400  # what a room display can show, read from 5 metres
MAX_TITLE_CHARS = 60
MAX_ID_CHARS = 80  # GroupSession.module_id holds 80
MODULE_FIELDS = ("id", "title", "track", "sequence", "summary", "goals", "steps")
STEP_FIELDS = ("title", "kind", "minutes", "room", "notes")
TRACK_FIELDS = ("id", "title", "description")
TRACK_FILE = "_track.yaml"
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


def display_path(path: Path) -> str:
    """The path as a person at this machine would type it (relative to here when it can be)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# ---- reading one file ------------------------------------------------------------------------

class _File:
    """One YAML file: its data, its nodes (for line numbers) and the problems found in it."""

    def __init__(self, path: Path):
        self.path = path
        self.name = display_path(path)
        self.problems: list[Problem] = []
        self.node: Node | None = None
        self.data: Any = None

    def problem(self, node_or_line: Node | int | None, message: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) or node_or_line is None else _line(node_or_line)
        self.problems.append(Problem(self.name, line, message))

    def read(self) -> bool:
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            self.problem(None, "the file is not UTF-8 text; save it as UTF-8 in your editor.")
            return False
        except OSError as exc:
            self.problem(None, f"the file cannot be read ({exc.strerror or exc}).")
            return False
        loader = yaml.SafeLoader(text)
        try:
            self.node = loader.get_single_node()
            if self.node is not None:
                _find_duplicate_keys(self, self.node)
                self.data = loader.construct_document(self.node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            what = " ".join(part for part in (exc.context, exc.problem) if part)
            self.problem(mark.line + 1 if mark else None, f"YAML syntax: {what}. {_syntax_hint(what)}".strip())
            return False
        except yaml.YAMLError as exc:
            self.problem(None, f"YAML syntax: {exc}")
            return False
        finally:
            loader.dispose()
        if self.node is None:
            self.problem(None, "the file is empty.")
            return False
        return not self.problems


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _syntax_hint(what: str) -> str:
    if "mapping values are not allowed" in what:
        return 'A value with ": " in it needs quotes, or a "|" block on its own lines.'
    if "tab" in what:
        return "Indent with spaces, not tabs."
    if "indentation" in what or "expected <block end>" in what:
        return "Check the indentation of this line and the one above."
    return ""


def _find_duplicate_keys(file: _File, node: Node) -> None:
    """YAML keeps the last of two equal keys without a word; an editor slip that we name instead."""
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:str" and isinstance(key.value, str):
                if key.value in seen:
                    file.problem(key, f"the field '{key.value}' appears twice here; keep one.")
                seen.add(key.value)
            _find_duplicate_keys(file, value)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _find_duplicate_keys(file, item)


def _entries(node: Node | None) -> dict[str, tuple[Node, Node]]:
    """{key: (key node, value node)} of a mapping node (the last of equal keys, as YAML keeps)."""
    if not isinstance(node, MappingNode):
        return {}
    return {key.value: (key, value) for key, value in node.value if isinstance(key.value, str)}


# ---- checking values -------------------------------------------------------------------------

def _text(file: _File, where: Node, name: str, value: Any) -> str | None:
    """A non-empty piece of text, or None after naming the problem."""
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        file.problem(where, f"{name} must be text." if value is not None else f"{name} is empty.")
        return None
    value = str(value).strip()
    if not value:
        file.problem(where, f"{name} is empty.")
        return None
    return value


def _whole_number(file: _File, where: Node, name: str, value: Any, low: int, high: int | None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        file.problem(where, f"{name} must be a whole number, not {value!r}.")
        return None
    if value < low or (high is not None and value > high):
        span = f"{low} to {high}" if high is not None else f"{low} or more"
        file.problem(where, f"{name} is {value}; it must be {span}.")
        return None
    return value


def _fields(file: _File, node: Node, data: dict, required: Iterable[str], what: str) -> None:
    entries = _entries(node)
    for name in required:
        if name not in data:
            file.problem(node, f"{what} is missing the field '{name}'.")
    for name, (key, _value) in entries.items():
        if name not in required:
            file.problem(key, f"unknown field '{name}' in {what} (the fields are: {', '.join(required)}).")


def room_text_problem(room: str) -> str | None:
    """Why this room text would not fit on a room display, or None."""
    words = len(room.split())
    if words > ROOM_MAX_WORDS:
        return f"the room text has {words} words; a room display shows at most {ROOM_MAX_WORDS}."
    if len(room) > ROOM_MAX_CHARS:
        return f"the room text has {len(room)} characters; a room display shows at most {ROOM_MAX_CHARS}."
    return None


def _markup(file: _File, node: Node, what: str, text: str, kind: str) -> None:
    """Name each line whose markup would show differently from how it reads (curriculum.markup)."""
    for line, message in markup.problems(text.rstrip("\n"), kind):
        # A `|` block keeps its lines, so a line of the text is a line of the file (the text starts on the
        # line after the `|`); other styles fold lines, so the value's own line is named.
        file.problem(node.start_mark.line + 1 + line if node.style == "|" else _line(node),
                     f"{what}: this line {message}")


def _step(file: _File, node: Node, data: Any, number: int) -> Step | None:
    what = f"step {number}"
    if not isinstance(data, dict):
        file.problem(node, f"{what} must be a set of fields ({', '.join(STEP_FIELDS)}).")
        return None
    before = len(file.problems)
    _fields(file, node, data, STEP_FIELDS, what)
    entries = _entries(node)

    def value_node(name: str) -> Node:
        return entries[name][1] if name in entries else node

    title = _text(file, value_node("title"), f"{what}: 'title'", data.get("title")) if "title" in data else None
    if title is not None and len(title) > MAX_TITLE_CHARS:
        file.problem(value_node("title"), f"{what}: the title has {len(title)} characters; at most {MAX_TITLE_CHARS}.")
    kind = data.get("kind")
    if "kind" in data and kind not in STEP_KINDS:
        file.problem(value_node("kind"), f"{what} has the unknown kind {kind!r} (the kinds are: {', '.join(STEP_KINDS)}).")
    minutes = None
    if "minutes" in data:
        minutes = _whole_number(file, value_node("minutes"), f"{what}: 'minutes'", data["minutes"], 1, MAX_STEP_MINUTES)
    room = _text(file, value_node("room"), f"{what}: 'room'", data.get("room")) if "room" in data else None
    if room is not None and (why := room_text_problem(room)):
        file.problem(value_node("room"), f"{what}: {why}")
    notes = _text(file, value_node("notes"), f"{what}: 'notes'", data.get("notes")) if "notes" in data else None
    for field, text in (("room", room), ("notes", notes)):
        if text is not None:
            _markup(file, value_node(field), f"{what}, '{field}'", data[field], field)
    if len(file.problems) > before:
        return None
    return Step(title=title, kind=kind, minutes=minutes, room=room, notes=notes)


def _module(file: _File, tracks: dict[str, Track], folder: str) -> Module | None:
    node, data = file.node, file.data
    if not isinstance(data, dict):
        file.problem(node, f"a module file is a set of fields ({', '.join(MODULE_FIELDS)}), one per line.")
        return None
    _fields(file, node, data, MODULE_FIELDS, "the module")
    entries = _entries(node)

    def value_node(name: str) -> Node:
        return entries[name][1] if name in entries else node

    module_id = data.get("id")
    if "id" in data:
        if not isinstance(module_id, str) or not ID_PATTERN.match(module_id) or len(module_id) > MAX_ID_CHARS:
            file.problem(value_node("id"), f"the id {module_id!r} must be lowercase letters, digits and dashes "
                                           f"(like rp-01-triggers), at most {MAX_ID_CHARS} characters.")
    title = _text(file, value_node("title"), "'title'", data.get("title")) if "title" in data else None
    if title is not None and len(title) > MAX_TITLE_CHARS:
        file.problem(value_node("title"), f"the title has {len(title)} characters; at most {MAX_TITLE_CHARS}.")
    track = data.get("track")
    if "track" in data:
        if not isinstance(track, str) or track not in tracks:
            known = ", ".join(sorted(tracks)) or "none"
            file.problem(value_node("track"), f"unknown track {track!r} (the tracks are: {known}).")
        elif track != folder:
            file.problem(value_node("track"), f"the track is {track!r} but the file is in the folder {folder!r}; "
                                              "move the file or fix the track.")
    sequence = None
    if "sequence" in data:
        sequence = _whole_number(file, value_node("sequence"), "'sequence'", data["sequence"], 1, None)
    summary = _text(file, value_node("summary"), "'summary'", data.get("summary")) if "summary" in data else None
    goals = data.get("goals")
    if "goals" in data:
        if not isinstance(goals, list) or not goals or not all(isinstance(g, str) and g.strip() for g in goals):
            file.problem(value_node("goals"), "'goals' must be a list of short sentences, one per line starting with '- '.")
            goals = None
    steps: list[Step] = []
    if "steps" in data:
        steps = _steps(file, entries["steps"][0], value_node("steps"), data["steps"])
    if file.problems:
        return None
    return Module(id=module_id, title=title, track=track, sequence=sequence, summary=summary,
                  goals=tuple(g.strip() for g in goals), steps=tuple(steps), path=file.name,
                  steps_line=_line(entries["steps"][0]))


def _steps(file: _File, key: Node, node: Node, data: Any) -> list[Step]:
    key_line = _line(key)
    if not data:
        file.problem(key_line, f"'steps' is empty; a module needs {MIN_STEPS} to {MAX_STEPS} steps.")
        return []
    if not isinstance(data, list):
        file.problem(key_line, "'steps' must be a list of steps, each starting with '- title:'.")
        return []
    if not MIN_STEPS <= len(data) <= MAX_STEPS:
        file.problem(key_line, f"the module has {len(data)} steps; it needs {MIN_STEPS} to {MAX_STEPS}.")
    items = node.value
    steps = [_step(file, item_node, item, number) for number, (item_node, item) in
             enumerate(zip(items, data), start=1)]
    if any(step is None for step in steps):
        return []
    kinds = [step.kind for step in steps]
    if kinds[0] != "check-in":
        file.problem(items[0], f"the first step must be a check-in (kind: check-in), not {kinds[0]}.")
    if kinds[-1] != "wrap-up":
        file.problem(items[-1], f"the last step must be a wrap-up (kind: wrap-up), not {kinds[-1]}.")
    for needed, why in (("exercise", "a worksheet or exercise"), ("discussion", "discussion questions")):
        if needed not in kinds:
            file.problem(key_line, f"the module needs a step of kind {needed} ({why}).")
    total = sum(step.minutes for step in steps)
    if not MIN_MODULE_MINUTES <= total <= MAX_MODULE_MINUTES:
        file.problem(key_line, f"the steps add up to {total} minutes; a group runs "
                               f"{MIN_MODULE_MINUTES} to {MAX_MODULE_MINUTES} minutes.")
    return steps


def _track(file: _File, folder: str) -> Track | None:
    data, node = file.data, file.node
    if not isinstance(data, dict):
        file.problem(node, f"a track file is a set of fields ({', '.join(TRACK_FIELDS)}).")
        return None
    _fields(file, node, data, TRACK_FIELDS, "the track")
    entries = _entries(node)
    if "id" in data and data["id"] != folder:
        file.problem(entries["id"][1], f"the track id {data['id']!r} must match its folder {folder!r}.")
    title = _text(file, entries["title"][1], "'title'", data["title"]) if "title" in entries else None
    if file.problems:
        return None
    return Track(id=folder, title=title, description=str(data.get("description") or "").strip())


# ---- the whole tree --------------------------------------------------------------------------

def check_tree(root: Path) -> tuple[Catalog, list[Problem]]:
    """Every track and module under `root` that passes, and every problem found."""
    result, problems = Catalog(), []
    if not root.is_dir():
        return result, [Problem(display_path(root), None, "the curriculum folder does not exist.")]
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        track_path = folder / TRACK_FILE
        if not track_path.exists():
            problems.append(Problem(display_path(folder), None,
                                    f"the folder has no {TRACK_FILE} (id, title, description), so it is not a track."))
            continue
        file = _File(track_path)
        if file.read():
            track = _track(file, folder.name)
            if track is not None:
                result.tracks[track.id] = track
        problems += file.problems

    ids: dict[str, str] = {}
    sequences: dict[tuple[str, int], str] = {}
    seen_sequences: dict[str, set[int]] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.yml")):
            problems.append(Problem(display_path(path), None, "not read: module files end in .yaml."))
        for path in sorted(folder.glob("*.yaml")):
            if path.name.startswith("_"):
                continue
            file = _File(path)
            module = _module(file, result.tracks, folder.name) if file.read() else None
            data = file.data if isinstance(file.data, dict) else {}
            entries = _entries(file.node)
            # Remember numbers even from a broken file, so its sequence is not also called a gap.
            if isinstance(data.get("sequence"), int) and isinstance(data.get("track"), str) \
                    and data["track"] in result.tracks:
                seen_sequences.setdefault(data["track"], set()).add(data["sequence"])
            if module is not None:
                if module.id in ids:
                    file.problem(entries["id"][1], f"the id {module.id!r} is already used by {ids[module.id]}; "
                                                   "each module needs its own id.")
                    module = None
                elif (module.track, module.sequence) in sequences:
                    file.problem(entries["sequence"][1],
                                 f"sequence {module.sequence} is already used by "
                                 f"{sequences[module.track, module.sequence]} in the track {module.track!r}.")
                    module = None
            if module is not None:
                ids[module.id] = file.name
                sequences[module.track, module.sequence] = file.name
                result.modules[module.id] = module
            problems += file.problems

    for track_id, track in result.tracks.items():
        numbers = seen_sequences.get(track_id, set())
        where = display_path(root / track_id / TRACK_FILE)
        if not numbers:
            problems.append(Problem(where, None, f"the track {track_id!r} has no modules."))
            continue
        missing = sorted(set(range(1, max(numbers) + 1)) - numbers)
        if missing:
            problems.append(Problem(where, None, f"the track {track_id!r} has no module with sequence "
                                                 f"{', '.join(map(str, missing))}; sequences run 1 to N with no gaps."))
    result.problems = [str(problem) for problem in problems]
    return result, problems


def load_catalog(root: Path) -> Catalog:
    return check_tree(root)[0]


@dataclass(frozen=True)
class GroupLength:
    """What the fit check needs of a group (from the database)."""

    code: str
    track: str
    minutes: int


def group_fit_problems(catalog: Catalog, groups: Iterable[GroupLength]) -> list[str]:
    """A module must fit in every active group of its track; a group's track must have modules."""
    problems = []
    for group in sorted(groups, key=lambda g: g.code):
        modules = catalog.track_modules(group.track)
        if not modules:
            problems.append(f"group {group.code}: its track {group.track!r} has no modules in the curriculum.")
        for module in modules:
            if module.minutes > group.minutes:
                problems.append(str(Problem(module.path, module.steps_line,
                                            f"the steps add up to {module.minutes} minutes, longer than group "
                                            f"{group.code} ({group.minutes} minutes).")))
    return problems
