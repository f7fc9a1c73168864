"""Curriculum trees to validate: the shipped tracks, with broken or unusual fixture modules added."""
from __future__ import annotations

import shutil
from pathlib import Path

from curriculum.catalog import TRACKS_DIR

FIXTURES = Path(__file__).parent.parent / "fixtures" / "curriculum"


def make_tree(tmp_path: Path, *fixtures: str, shipped: bool = True) -> Path:
    """A copy of the shipped tracks (or only their _track.yaml files) with fixture modules added
    to relapse-prevention as 17-<name>.yaml."""
    root = tmp_path / "tracks"
    if shipped:
        shutil.copytree(TRACKS_DIR, root)
    else:
        for track in ("relapse-prevention", "twelve-step"):
            (root / track).mkdir(parents=True)
            shutil.copy(TRACKS_DIR / track / "_track.yaml", root / track / "_track.yaml")
    for name in fixtures:
        shutil.copy(FIXTURES / f"{name}.yaml", root / "relapse-prevention" / f"17-{name}.yaml")
    return root
