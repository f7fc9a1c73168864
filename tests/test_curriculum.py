"""The module files' validator, `iop curriculum check`, and serving what is valid when a file is broken."""
from __future__ import annotations

import shutil
from datetime import date, time
from pathlib import Path

import pytest

from curriculum.catalog import TRACKS_DIR, catalog
from curriculum.validate import check_tree, display_path
from helpers.curriculum_trees import make_tree


def where(root: Path, name: str, line: int) -> str:
    return f"{display_path(root / 'relapse-prevention' / f'17-{name}.yaml')}:{line}: "


def test_the_shipped_curriculum_is_valid():
    result, problems = check_tree(TRACKS_DIR)
    assert problems == []
    assert len(result.track_modules("relapse-prevention")) == 16
    assert len(result.track_modules("twelve-step")) == 12
    assert [m.sequence for m in result.track_modules("twelve-step")] == list(range(1, 13))
    first = result.module("rp-01-triggers")
    assert first.title == "Knowing Your Triggers" and first.steps[0].kind == "check-in"


def test_the_good_fixture_is_valid_so_each_broken_one_fails_for_its_own_change(tmp_path):
    root = make_tree(tmp_path, "good")
    result, problems = check_tree(root)
    assert problems == [] and "rp-17-fixture" in result.modules and len(result.modules) == 29


BROKEN = [
    # fixture, line, what the message says
    ("bad-syntax", 3, "YAML syntax: mapping values are not allowed here. A value with \": \" in it needs quotes"),
    ("missing-field", 2, "the module is missing the field 'summary'."),
    ("duplicate-id", 2, "the id 'rp-01-triggers' is already used by "),
    ("duplicate-sequence", 5, "sequence 3 is already used by "),
    ("empty-steps", 10, "'steps' is empty; a module needs 5 to 9 steps."),
    ("unknown-track", 4, "unknown track 'anger-management' (the tracks are: relapse-prevention, twelve-step)."),
    ("unknown-kind", 19, "step 2 has the unknown kind 'lecture'"),
    ("too-long", 10, "the steps add up to 200 minutes; a group runs 90 to 180 minutes."),
    ("room-too-long", 21, "step 2: the room text has 61 words; a room display shows at most 60."),
    ("not-a-number", 27, "step 3: 'minutes' must be a whole number, not 'forty'."),
    ("duplicate-field", 21, "the field 'minutes' appears twice here; keep one."),
    ("wrong-order", 11, "the first step must be a check-in (kind: check-in), not teaching."),
    ("wrong-order", 39, "the last step must be a wrap-up (kind: wrap-up), not discussion."),
    ("wrong-order", 10, "the module needs a step of kind exercise"),
    ("run-into-list", 32, "step 3, 'room': this line follows the list item “Feelings and thoughts” with no blank "
                          "line, so it shows as part of that item; put a blank line before it"),
    ("odd-markup", 25, "step 2, 'notes': this line is indented 2 spaces; remove them"),
    ("odd-markup", 42, "step 4, 'notes': this line is numbered 4, but shows as 3"),
]


@pytest.mark.parametrize("name,line,message", BROKEN, ids=[f"{b[0]}:{b[1]}" for b in BROKEN])
def test_each_broken_file_is_named_with_its_line_and_the_rest_is_served(tmp_path, name, line, message):
    root = make_tree(tmp_path, name)
    result, problems = check_tree(root)
    texts = [str(problem) for problem in problems]
    assert any(text.startswith(where(root, name, line) + message) for text in texts), texts
    # Only the broken file is named, and every shipped module is still served.
    assert all(f"17-{name}.yaml" in text for text in texts)
    assert len(result.modules) == 28 and "rp-17-fixture" not in result.modules
    assert result.module("rp-01-triggers").title == "Knowing Your Triggers"
    if name == "duplicate-id":
        assert "01-triggers.yaml" in texts[0]


def test_track_problems_gaps_empty_tracks_and_stray_files(tmp_path):
    root = make_tree(tmp_path, shipped=False)
    shutil.copy(TRACKS_DIR / "relapse-prevention" / "01-triggers.yaml", root / "relapse-prevention")
    shutil.copy(TRACKS_DIR / "relapse-prevention" / "03-thought-stopping-and-urge-surfing.yaml",
                root / "relapse-prevention")
    (root / "relapse-prevention" / "02-draft.yml").write_text("id: draft\n")
    (root / "anger").mkdir()
    (root / "anger" / "01-anger.yaml").write_text("id: x\n")
    (root / "relapse-prevention" / "empty.yaml").write_text("")
    texts = [str(p) for p in check_tree(root)[1]]
    assert any("relapse-prevention/_track.yaml: the track 'relapse-prevention' has no module with sequence 2"
               in t for t in texts), texts
    assert any("twelve-step/_track.yaml: the track 'twelve-step' has no modules." in t for t in texts)
    assert any("02-draft.yml: not read: module files end in .yaml." in t for t in texts)
    assert any(t.endswith("anger: the folder has no _track.yaml (id, title, description), so it is not a track.")
               for t in texts)
    assert any("empty.yaml: the file is empty." in t for t in texts)


# ---- iop curriculum check --------------------------------------------------------------------

def test_check_command_passes_on_the_shipped_curriculum(runner):
    result = runner.invoke(args=["curriculum", "check"])
    assert result.exit_code == 0, result.output
    assert "28 modules in 2 tracks are valid (relapse-prevention: 16, twelve-step: 12)" in result.output


def test_check_command_exits_1_naming_every_broken_file_and_line(runner, app, tmp_path):
    broken = ["bad-syntax", "missing-field", "unknown-kind", "room-too-long"]
    root = make_tree(tmp_path, *broken)
    app.config["CURRICULUM_DIR"] = str(root)
    result = runner.invoke(args=["curriculum", "check"])
    assert result.exit_code == 1
    assert "4 problem(s) in the curriculum." in result.stderr
    for name, line, message in BROKEN:
        if name in broken:
            assert where(root, name, line) + message in result.stderr


def test_check_command_refuses_modules_longer_than_an_active_group_of_their_track(runner, app, world, tmp_path):
    root = make_tree(tmp_path, "good", shipped=False)  # rp-17-fixture: 170 minutes, steps: at line 10
    app.config["CURRICULUM_DIR"] = str(root)
    world.group(code="RP-SHORT", track="relapse-prevention", start=time(9), end=time(11, 30))  # 150 minutes
    result = runner.invoke(args=["curriculum", "check"])
    assert result.exit_code == 1
    assert (where(root, "good", 10) + "the steps add up to 170 minutes, longer than group RP-SHORT (150 minutes)."
            in result.stderr)
    assert "group RP-SHORT: its track" not in result.stderr
    assert "its track 'twelve-step' has no modules" not in result.stderr  # no twelve-step group to run


def test_check_command_counts_only_active_groups_and_names_groups_without_modules(runner, app, world):
    from iop.store import db
    from iop.store.models import Group

    world.group(code="RP-AM")  # 180 minutes: every shipped module fits
    short = world.group(code="TS-OLD", track="twelve-step", start=time(18), end=time(19, 30))
    with app.app_context():
        with db.transaction() as s:
            s.get(Group, short.id).active = False
    assert runner.invoke(args=["curriculum", "check"]).exit_code == 0
    world.group(code="ANGER", track="anger-management")
    result = runner.invoke(args=["curriculum", "check"])
    assert result.exit_code == 1
    assert "group ANGER: its track 'anger-management' has no modules in the curriculum." in result.stderr
    assert "TS-OLD" not in result.stderr


def test_check_works_without_a_database_schema(tmp_path):
    from iop import create_app

    bare = create_app({"INSTANCE_PATH": str(tmp_path / "bare"), "SECRET_KEY": "k" * 40, "SCHEDULER": False,
                       "TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'none.sqlite3'}"})
    result = bare.test_cli_runner().invoke(args=["curriculum", "check"])
    assert result.exit_code == 0, result.output
    assert "no database, so group lengths were not checked" in result.output


# ---- serving ---------------------------------------------------------------------------------

def test_a_broken_file_does_not_stop_the_server_serving_the_rest(app, world, tmp_path):
    root = make_tree(tmp_path, "bad-syntax", "duplicate-id")
    app.config["CURRICULUM_DIR"] = str(root)
    group = world.group(code="RP-AM")
    group_session = world.session(group, date(2026, 3, 2))
    assert group_session.module_id == "rp-01-triggers"
    with app.app_context():
        served = catalog()
        assert len(served.modules) == 28
        assert len(served.problems) == 2 and all("17-" in p for p in served.problems)
