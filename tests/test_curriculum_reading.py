"""Reading the shipped modules as a room and a counselor would: the text fits a display, the steps fit the group."""
from __future__ import annotations

import re

import pytest

from curriculum.catalog import TRACKS_DIR
from curriculum.validate import check_tree
from iop.ops.demo import GROUPS

CATALOG, PROBLEMS = check_tree(TRACKS_DIR)
STEPS = [(module.id, number, step) for module in CATALOG.modules.values()
         for number, step in enumerate(module.steps, start=1)]
LABELS = re.compile(r"\b(addicts?|patients?|alcoholics?|junkies|abusers?)\b", re.IGNORECASE)


def test_all_28_modules_load():
    assert PROBLEMS == [] and len(CATALOG.modules) == 28


@pytest.mark.parametrize("module_id,number,step", STEPS, ids=[f"{m}-{n}" for m, n, _ in STEPS])
def test_each_room_text_fits_a_display_read_from_across_the_room(module_id, number, step):
    # About 60 words at 36-48 px on 1920x1080: a bound on words, characters and lines.
    assert len(step.room.split()) <= 60
    assert len(step.room) <= 400
    assert len(step.room.splitlines()) <= 10
    assert len(step.title) <= 60
    assert not LABELS.search(step.room), "shared screens never use clinical labels"
    assert step.notes.strip() and step.notes != step.room


@pytest.mark.parametrize("code,track,start,end", [(g[0], g[2], g[5], g[6]) for g in GROUPS])
def test_every_module_of_a_demo_groups_track_fits_its_length(code, track, start, end):
    length = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    assert length == 180
    modules = CATALOG.track_modules(track)
    assert modules
    for module in modules:
        assert 90 <= sum(step.minutes for step in module.steps) <= length, module.id


def test_every_module_opens_with_a_check_in_and_closes_with_practice():
    for module in CATALOG.modules.values():
        kinds = [step.kind for step in module.steps]
        assert kinds[0] == "check-in" and kinds[-1] == "wrap-up", module.id
        assert "exercise" in kinds and "discussion" in kinds, module.id
        assert "?" in " ".join(s.room for s in module.steps if s.kind == "discussion"), module.id
        assert "practice" in module.steps[-1].room.lower(), module.id
