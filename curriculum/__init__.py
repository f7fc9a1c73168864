"""The group curriculum: module files per track, their loader and validator, and the rotation."""


def check_for_cli() -> tuple[list[str], str]:
    """(problems, summary) for `iop curriculum check` (filled by the curriculum work)."""
    return [], "No curriculum loader yet."
