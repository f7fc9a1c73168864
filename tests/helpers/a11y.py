"""The accessibility check every browser test uses: axe-core (bundled by axe-playwright-python, nothing
downloaded) run inside the page, on the WCAG 2.0, 2.1 and 2.2 A and AA rules. Zero violations pass."""
from __future__ import annotations

import functools

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@functools.cache
def _axe():
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


def settled(page) -> None:
    """Wait until no CSS transition or finite animation runs: a step fading in is read half-transparent,
    and its contrast then depends on the moment axe looks (a person reads the step once it has arrived).
    Endless ones (the kiosk's spinner, its card picture) are part of how the page looks."""
    # A function, not an expression: Playwright re-evaluates an expression with eval() while it polls,
    # which the Content-Security-Policy (no 'unsafe-eval') refuses on a page still animating.
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running'"
                           " || (a.effect && a.effect.getComputedTiming().iterations === Infinity))")


def violations(page) -> list[dict]:
    """axe-core's violations of the WCAG A/AA rules on the page once it has settled (hidden parts excluded)."""
    settled(page)
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


# Where the focus is, and whether a person sees it: on screen, not clipped away, not covered (the
# middle of the element hits the element itself, a part of it, or its label).
_FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const r = el.getBoundingClientRect();
  const onScreen = r.width >= 2 && r.height >= 2 && r.bottom > 0 && r.right > 0
    && r.top < window.innerHeight && r.left < window.innerWidth;
  let hit = null;
  if (onScreen) {
    const x = Math.min(Math.max(r.left + r.width / 2, 0), window.innerWidth - 1);
    const y = Math.min(Math.max(r.top + r.height / 2, 0), window.innerHeight - 1);
    hit = document.elementFromPoint(x, y);
  }
  const seen = onScreen && hit !== null && (hit === el || el.contains(hit) || (hit.control === el)
    || (el.labels && Array.from(el.labels).some((label) => label.contains(hit))));
  return {seen: seen, what: el.outerHTML.slice(0, 160)};
}"""


def tab_through(page, most: int = 200) -> list[dict]:
    """Press Tab from the top of the page until the focus comes round again; each stop, seen or not."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    stops: list[dict] = []
    for _ in range(most):
        page.keyboard.press("Tab")
        stop = page.evaluate(_FOCUSED)
        if stop is None or (stops and stop["what"] == stops[0]["what"]):
            break
        stops.append(stop)
    return stops
