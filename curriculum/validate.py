"""Loads and validates module files (a minimal loader; the curriculum work adds every check)."""
from __future__ import annotations

from pathlib import Path

import yaml

from curriculum.catalog import Catalog, Module, Step, Track


def load_catalog(root: Path) -> Catalog:
    result = Catalog()
    for track_file in sorted(root.glob("*/_track.yaml")):
        data = yaml.safe_load(track_file.read_text(encoding="utf-8"))
        result.tracks[data["id"]] = Track(data["id"], data["title"], data.get("description", "").strip())
    for path in sorted(root.glob("*/*.yaml")):
        if path.name.startswith("_"):
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            module = Module(
                id=data["id"], title=data["title"], track=data["track"], sequence=int(data["sequence"]),
                summary=str(data["summary"]).strip(), goals=tuple(data["goals"]),
                steps=tuple(Step(s["title"], s["kind"], int(s["minutes"]), str(s["room"]).strip(),
                                 str(s["notes"]).strip()) for s in data["steps"]),
                path=str(path),
            )
        except Exception as exc:  # reported, and the rest is served
            result.problems.append(f"{path}: {exc}")
            continue
        result.modules[module.id] = module
    return result
