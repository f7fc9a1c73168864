"""Running the service: the command line, the server, the scheduled jobs, the demo."""
from __future__ import annotations

import click


class UserError(click.ClickException):
    """A mistake the person running the command can fix: one line on stderr, exit 1."""

    exit_code = 1
