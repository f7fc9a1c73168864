"""Every document the repository names is in the repository: references point into docs/, and each
docs/ file or Markdown link they name exists (a fresh clone has nothing else to read)."""
from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".git", ".venv", "instance", "__pycache__", "node_modules", ".pytest_cache", ".hypothesis"}
# The design notes the project started from; they were never part of the repository.
OUTSIDE = re.compile(r"\b(?:CONTRACT|DOMAIN|SECURITY|ARCHITECTURE|UI|STYLE|BENCH)\.md\b")
DOCS_REFERENCE = re.compile(r"\bdocs/([\w./-]+\.md)")
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")


def repository_text_files():
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = sorted(d for d in subfolders if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(folder, name)
            try:
                yield path.relative_to(ROOT), path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # images, fonts, compiled files


def test_no_file_names_a_document_outside_the_repository():
    found = [f"{relative}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)}"
             for relative, text in repository_text_files() for match in OUTSIDE.finditer(text)]
    assert found == [], "point these into docs/ (docs/domain.md, docs/interface.md, ...):\n" + "\n".join(found)


def test_every_docs_file_named_exists():
    missing = sorted({f"{relative}: docs/{name}" for relative, text in repository_text_files()
                      for name in DOCS_REFERENCE.findall(text) if not (ROOT / "docs" / name).is_file()})
    assert missing == []


def test_markdown_links_to_documents_resolve():
    missing = []
    for relative, text in repository_text_files():
        if relative.suffix != ".md":
            continue
        for target in MARKDOWN_LINK.findall(text):
            if "://" not in target and not (ROOT / relative.parent / target).resolve().is_file():
                missing.append(f"{relative}: {target}")
    assert missing == []


def test_the_checks_see_what_they_look_for():
    assert OUTSIDE.search("see " + "DOMAIN" + ".md rule 2") and not OUTSIDE.search("docs/domain.md rule 2")
    assert DOCS_REFERENCE.findall("docs/domain.md rule 2, docs/interface.md") == ["domain.md", "interface.md"]
    assert MARKDOWN_LINK.findall("[a](guide/a.md#x) [b](b.md) [c](https://x.org)") == ["guide/a.md", "b.md"]


def test_every_test_docs_security_names_exists():
    """docs/security.md proves each control by a test it names (`tests/file.py::test_name`, then `::other`
    for more of the same file): each of them is there."""
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    missing, named = [], 0
    for line in text[text.index("## Controls"):].splitlines():
        current = None
        for path, name in re.findall(r"`(tests/[\w/]+\.py)?::(\w+)`", line):
            current = path or current
            assert current, f"a bare ::{name} with no file before it: {line[:80]}"
            named += 1
            if f"def {name}(" not in (ROOT / current).read_text(encoding="utf-8"):
                missing.append(f"{current}::{name}")
    assert named > 50 and missing == []
