"""The curriculum's markup: one renderer for the room display, the control page and prints, and the check
that names text which would show differently from how it reads."""
from __future__ import annotations

import pytest

from curriculum import markup

RENDERED = [
    # (what a counselor writes, kind, the HTML every screen shows)
    ("One idea, said simply.", "room", "<p>One idea, said simply.</p>"),
    ("Welcome!\nPlease share:\n- Your first name\n- How you are today",
     "room", "<p>Welcome!<br>\nPlease share:</p>\n<ul>\n<li>Your first name</li>\n<li>How you are today</li>\n</ul>"),
    # A paragraph after a list, after a blank line: its own paragraph (modules 01 and 07 ran it into the item).
    ("Around it, write:\n- Times\n- Feelings and thoughts\n\nPut a star by your three strongest triggers.",
     "room", "<p>Around it, write:</p>\n<ul>\n<li>Times</li>\n<li>Feelings and thoughts</li>\n</ul>\n"
             "<p>Put a star by your three strongest triggers.</p>"),
    ("Fill in:\n\n5. My plan\n6. If I slip", "room", '<p>Fill in:</p>\n<ol start="5">\n<li>My plan</li>\n<li>If I slip</li>\n</ol>'),
    ("1. Name it.\n2. Feel it.", "room", "<ol>\n<li>Name it.</li>\n<li>Feel it.</li>\n</ol>"),
    ("- a long item\n  that goes on", "room", "<ul>\n<li>a long item<br>\nthat goes on</li>\n</ul>"),
    ("It is *not* your fault, and **you** decide.", "room", "<p>It is <em>not</em> your fault, and <strong>you</strong> decide.</p>"),
    # Room text keeps each line; notes are prose whose lines flow together.
    ("Today: triggers are signals.\nPractice: notice one.", "room", "<p>Today: triggers are signals.<br>\nPractice: notice one.</p>"),
    ("Explain in plain words: our brains\nlink using with places.\n\nThen ask.", "notes",
     "<p>Explain in plain words: our brains\nlink using with places.</p>\n<p>Then ask.</p>"),
    # Nothing else is markup: HTML, headings, links and code show as written, escaped.
    ("<b>Stop</b> & think", "room", "<p>&lt;b&gt;Stop&lt;/b&gt; &amp; think</p>"),
    ("# Not a heading\n[not](a link) `not code`\n> not a quote", "room",
     "<p># Not a heading<br>\n[not](a link) `not code`<br>\n&gt; not a quote</p>"),
    ("", "room", ""),
]


@pytest.mark.parametrize("text,kind,html", RENDERED)
def test_the_markup_renders_as_written(text, kind, html):
    assert markup.to_html(text, kind) == html


PROBLEMS = [
    # (text, kind, [(line, the start of what is wrong)])
    ("Around it, write:\n- Times\n- Feelings and thoughts\nPut a star by your three strongest triggers.", "room",
     [(4, "follows the list item “Feelings and thoughts” with no blank line")]),
    ("- Go to a meeting. That is help\nfor lonely.", "room",
     [(2, "follows the list item “Go to a meeting. That is help” with no blank line, so it shows as part of that "
          "item; put a blank line before it, or indent it 2 spaces")]),
    ("Practice this week: notice one trigger. Write down what it\nwas and what you did.", "room",
     [(1, "breaks a sentence in two, and the room display keeps each line as written")]),
    ("Explain it in plain words\nand give an example.", "notes", []),  # prose flows: no problem in notes
    ("Teach the idea\n  and give one example.", "notes", [(2, "is indented 2 spaces; remove them")]),
    ("- an item\n   with three spaces", "room", [(2, "is indented 3 spaces; indent it exactly 2 spaces")]),
    ("Fill in:\n5. My plan\n6. If I slip", "room",
     [(2, "looks like a list item but shows as part of the line above"), (3, "looks like a list item")]),
    ("1. one\n2. two\n4. four", "room", [(3, "is numbered 4, but shows as 3")]),
    ("Please share:\n  - your name", "room", [(2, "starts a list item with spaces before its marker")]),
    ("-Your name", "room", [(1, "starts with “-” and no space")]),
    ("Breathe in.\tBreathe out.", "room", [(1, "has a tab")]),
    ("Welcome!\nPlease share:\n- Your first name\n\nYou can always pass.", "room", []),
]


@pytest.mark.parametrize("text,kind,expected", PROBLEMS)
def test_markup_that_reads_one_way_and_shows_another_is_named_with_its_line(text, kind, expected):
    found = markup.problems(text, kind)
    assert [line for line, _message in found] == [line for line, _start in expected]
    for (_line, message), (_l, start) in zip(found, expected):
        assert message.startswith(start), message


def test_every_shipped_step_renders_its_lists_and_paragraphs_apart():
    """Module 01's trigger map: the sentence after the list is a paragraph of its own on every screen."""
    from curriculum.catalog import catalog

    step = next(s for s in catalog().module("rp-01-triggers").steps if s.title == "My trigger map")
    html = markup.to_html(step.room, "room")
    assert "<li>Feelings and thoughts</li>\n</ul>\n<p>Put a star by your three strongest triggers.</p>" in html
    for module in catalog().modules.values():
        for step in module.steps:
            assert markup.problems(step.room, "room") == [] and markup.problems(step.notes, "notes") == []
