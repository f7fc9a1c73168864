"""The client page's weekly chart as geometry (pure): the template draws it as inline SVG."""
from __future__ import annotations

from typing import Sequence

from iop.rules.hours import WeekFigures

STEP_MINUTES = 180  # the scale goes up in whole 3-hour steps
HEIGHT, PAD, BAR_WIDTH, GAP, LEFT = 180, 12, 32, 16, 44


def weekly_chart(history: Sequence[WeekFigures]) -> dict:
    """Bar geometry for the weekly chart (drawn at its natural size): attended bars against a dashed
    target mark, on a scale of whole 3-hour steps."""
    top = max([60] + [w.attended_minutes for w in history] + [w.target_minutes for w in history])
    top = -(-top // STEP_MINUTES) * STEP_MINUTES

    def y(minutes: int) -> int:
        return PAD + HEIGHT - round(HEIGHT * minutes / top)

    bars = []
    for index, week in enumerate(history):
        x = LEFT + index * (BAR_WIDTH + GAP) + GAP // 2
        bars.append({"x": x, "y": y(week.attended_minutes), "h": PAD + HEIGHT - y(week.attended_minutes),
                     "target_y": y(week.target_minutes) if week.target_minutes else None, "week": week})
    ticks = [{"y": y(m), "label": f"{m // 60} h"} for m in range(0, top + 1, STEP_MINUTES)]
    return {"bars": bars, "ticks": ticks, "height": PAD + HEIGHT, "bar_width": BAR_WIDTH,
            "width": LEFT + len(history) * (BAR_WIDTH + GAP) + GAP}
