"""The `iop` console script: the app's commands (iop.ops.cli) with one-line errors for the person."""
from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup
from sqlalchemy.exc import OperationalError

from iop import create_app
from iop.config import ConfigError
from iop.ops.cli import first_line


def main() -> None:
    group = FlaskGroup(create_app=lambda: create_app(), add_version_option=False,
                       help="IOP Kiosk: check-in kiosk, live groups and attendance hours.")
    try:
        group.main(prog_name="iop")
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except OperationalError as exc:
        click.echo(f"Error: the database cannot be reached ({first_line(exc.orig)}). "
                   "Check IOP_DATABASE_URL and that the database server is running.", err=True)
        sys.exit(1)
