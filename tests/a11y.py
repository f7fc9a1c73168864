"""The accessibility check every browser test uses: axe-core (bundled by axe-playwright-python, nothing
downloaded) run inside the page, on the WCAG 2.0, 2.1 and 2.2 A and AA rules. Zero violations pass."""
from __future__ import annotations

import functools

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@functools.cache
def _axe():
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


def violations(page) -> list[dict]:
    """axe-core's violations of the WCAG A/AA rules on the page as it is now (hidden parts excluded)."""
    options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
    return _axe().run(page, options=options).response["violations"]


def describe(found: list[dict]) -> str:
    lines = []
    for violation in found:
        lines.append(f"{violation['id']} ({violation.get('impact')}): {violation['help']}")
        for node in violation["nodes"][:5]:
            why = " ".join(line.strip() for line in node.get("failureSummary", "").splitlines()[1:])
            lines.append(f"    {' '.join(map(str, node['target']))}: {why}")
    return "\n".join(lines)


def assert_accessible(page, what: str = "") -> None:
    """Fail with each violation, the rule and where, when the page breaks a WCAG A/AA rule."""
    found = violations(page)
    assert not found, f"accessibility violations on {what or page.url}:\n{describe(found)}"
