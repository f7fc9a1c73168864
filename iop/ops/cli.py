"""The `iop` commands (docs/interface.md). Each is a thin shell over a domain module."""
from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from iop.ops import UserError
from iop.ops.serving import DEFAULT_THREADS


def _date(value: str, name: str) -> date:
    from iop.rules import entry

    try:
        return entry.day(value, entry.Field(name, name))
    except entry.EntryError:
        raise UserError(f"{name} must be a date like 2026-03-02, not {value!r}.") from None


# ---- database ------------------------------------------------------------------------------

@click.command("init")
@with_appcontext
def init_command():
    """Create or upgrade the database to the newest schema."""
    from iop.store import migrate

    migrate.upgrade(current_app)
    click.echo("The database is ready.")


@click.command("demo")
@with_appcontext
def demo_command():
    """init, then load the demo program (safe to run again)."""
    from iop.ops import demo
    from iop.store import migrate

    migrate.upgrade(current_app)
    summary = demo.load()
    click.echo(demo.describe(summary))


# ---- backups -------------------------------------------------------------------------------

@click.group("backup", invoke_without_command=True)
@click.option("-o", "--output", type=click.Path(),
              help="The file to write (default: a new file in IOP_BACKUP_DIR).")
@with_appcontext
@click.pass_context
def backup_group(ctx, output):
    """Back up the database while the server runs (`iop backup verify FILE` checks a backup)."""
    from iop.ops import backup

    if ctx.invoked_subcommand is not None:
        if output:
            raise UserError("-o goes with `iop backup` alone, not with a subcommand.")
        return
    app = current_app._get_current_object()
    try:
        path = Path(output).expanduser().resolve() if output else backup.new_backup_path(app)
        manifest = backup.write_backup(app, path)
    except backup.BackupError as exc:
        raise UserError(str(exc)) from None
    sealed = "encrypted" if app.config.get("BACKUP_KEY") else "not encrypted: IOP_BACKUP_KEY is not set"
    click.echo(f"Wrote the {manifest.describe()} to {path} ({path.stat().st_size:,} bytes, {sealed}) "
               f"in {manifest.seconds:.1f} s.")


@backup_group.command("verify")
@click.argument("file", type=click.Path())
@with_appcontext
def backup_verify_command(file):
    """Check FILE: restore it into a temporary database and compare it with its manifest."""
    from iop.ops import backup

    app = current_app._get_current_object()
    path = Path(file).expanduser().resolve()
    in_folder = path.parent == backup.backup_dir(app).resolve() and backup.NAME.match(path.name)
    try:
        manifest = backup.verify(app, path)
    except backup.BackupError as exc:
        if in_folder and path.is_file():
            backup.record_check(path, False, str(exc))
        raise UserError(str(exc)) from None
    if in_folder:
        backup.record_check(path, True)
    click.echo(f"OK: the {manifest.describe()}; the checksum, the row counts and the schema check out.")


@click.command("restore")
@click.argument("file", type=click.Path())
@click.option("--force", is_flag=True,
              help="Replace a database that holds data (it is kept aside as a backup first).")
@with_appcontext
def restore_command(file, force):
    """Restore the database from a backup FILE (stop the server first); an older schema is migrated forward."""
    from iop.ops import backup

    try:
        restored = backup.restore(current_app._get_current_object(), Path(file).expanduser().resolve(), force=force)
    except backup.BackupError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"Restored the {restored.manifest.describe()}; the schema is now revision {restored.revision_now}.")
    if restored.kept_aside:
        click.echo(f"The database it replaced is kept in {restored.kept_aside}.")
    if not restored.same_secret_key:
        click.echo("Note: this server's secret key is not the one the backup was made with: printed cards and "
                   "enrolled kiosks work again once IOP_SECRET_KEY is set to the old key (or reprint the cards "
                   "and enroll the kiosks again).", err=True)


# ---- serving -------------------------------------------------------------------------------

@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on: 127.0.0.1 is this computer only; 0.0.0.0 lets tablets on the network in.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(4, 1000),
              help="Screens and kiosk requests served at once (each open room display or control page holds one).")
@click.option("--demo", "with_demo", is_flag=True, help="Load the demo program first.")
@click.option("--https", "use_https", is_flag=True, help="Serve TLS (tablet cameras need it off localhost).")
@click.option("--cert", type=click.Path(dir_okay=False), help="Certificate file (PEM) for --https.")
@click.option("--key", type=click.Path(dir_okay=False), help="Private key file (PEM) for --https.")
@with_appcontext
def serve_command(host, port, threads, with_demo, use_https, cert, key):
    """Run the web and realtime server (and the scheduler unless IOP_SCHEDULER=off)."""
    from iop.ops import demo, scheduler, serving
    from iop.store import migrate

    app = current_app._get_current_object()
    if problem := serving.port_problem(host, port):
        raise UserError(f"Cannot start: {problem}")
    migrate.upgrade(app)
    ssl_context = serving.ssl_context(app, cert, key) if use_https else None
    if ssl_context:  # served over TLS: staff cookies never travel in clear text (as with IOP_HTTPS=on)
        app.config.update(PREFERRED_URL_SCHEME="https", SESSION_COOKIE_SECURE=True)
    reach = serving.Reach(host, port, https=bool(ssl_context))
    app.config["SERVE_REACH"] = reach  # the Kiosks page offers only links that can work
    if with_demo:
        tablets = reach.tablet_bases()
        click.echo(demo.describe(demo.load(), base_url=(tablets or [reach.local_base()])[0], tablets_reach=bool(tablets)))
        click.echo()
    click.echo(serving.where_to_go(reach, threads))

    def in_the_serving_process():
        if app.config["SCHEDULER"]:
            scheduler.start(app)

    serving.run(app, host, port, threads, ssl_context, on_start=in_the_serving_process)


@click.command("scheduler")
@with_appcontext
def scheduler_command():
    """Run only the scheduled jobs (deployments with several web processes)."""
    from iop.ops import scheduler

    scheduler.run_forever(current_app._get_current_object())


# ---- staff and kiosks ----------------------------------------------------------------------

@click.group("user")
def user_group():
    """Staff logins: list, add, deactivate, reactivate, set-role, reset-password, unlock."""


def _staff_change(change):
    """Run change() in one unit of work; a StaffError is the person's one-line reason."""
    from iop.clinic import staff
    from iop.store import db

    try:
        with db.transaction():
            return change()
    except staff.StaffError as exc:
        raise UserError(str(exc)) from None


def _member(username: str):
    from iop.clinic import staff

    try:
        return staff.find(username)
    except staff.StaffError as exc:
        raise UserError(str(exc)) from None


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True, default="", show_default=False)


@user_group.command("list")
@with_appcontext
def user_list_command():
    """Every staff login (deactivated ones too): username, role, state, name."""
    from iop import clock
    from iop.clinic import sign_in_throttle, staff

    slowed = sign_in_throttle.slowed_usernames(clock.now())
    for user in staff.everyone():
        state = "active" if user.active else "deactivated"
        if user.username.lower() in slowed:
            state += ",slowed-down"
        click.echo(f"{user.username}\t{user.role}\t{state}\t{user.signature}")


@user_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["facilitator", "coordinator", "admin"]))
@click.option("--name", "display_name", default="", help="Full name as it appears on notes.")
@click.option("--credentials", default="", help="Credentials, e.g. LCSW, CADC.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def user_add_command(username, role, display_name, credentials, password_stdin):
    """Create a staff login."""
    from iop.clinic import staff

    try:
        username = staff.validate_username(username)
    except staff.StaffError as exc:
        raise UserError(str(exc)) from None
    password = _new_password(password_stdin)
    _staff_change(lambda: staff.add_user(username, password, role, display_name, credentials))
    click.echo(f"Added {role} {username}.")


@user_group.command("deactivate")
@click.argument("username")
@with_appcontext
def user_deactivate_command(username):
    """USERNAME can no longer sign in and is signed out everywhere (the account is kept)."""
    from iop import clock
    from iop.clinic import staff

    user = _member(username)
    ended = _staff_change(lambda: staff.deactivate(user, None, clock.now()))
    click.echo(f"Deactivated {user.username} (signed out of {ended} session(s)).")


@user_group.command("reactivate")
@click.argument("username")
@with_appcontext
def user_reactivate_command(username):
    """USERNAME may sign in again."""
    from iop.clinic import staff

    user = _member(username)
    _staff_change(lambda: staff.reactivate(user, None))
    click.echo(f"Reactivated {user.username}.")


@user_group.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(["facilitator", "coordinator", "admin"]))
@with_appcontext
def user_set_role_command(username, role):
    """Give USERNAME another role (they are signed out everywhere, and sign in again with it)."""
    from iop import clock
    from iop.clinic import staff

    user = _member(username)
    _staff_change(lambda: staff.set_role(user, role, None, clock.now()))
    click.echo(f"{user.username} is now a {role}.")


@user_group.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@with_appcontext
def user_reset_password_command(username, password_stdin):
    """Set a new password for USERNAME (asked twice, or read from standard input); signs them out everywhere."""
    from iop import clock
    from iop.clinic import staff

    user = _member(username)
    password = _new_password(password_stdin)
    _staff_change(lambda: staff.reset_password(user, password, None, clock.now()))
    click.echo(f"{user.username} has a new password.")


@user_group.command("unlock")
@click.argument("username")
@with_appcontext
def user_unlock_command(username):
    """Lift the sign-in slow-down of USERNAME (wrong passwords typed for it), from every address."""
    from iop.clinic import staff

    user = _member(username)
    cleared = _staff_change(lambda: staff.unlock(user, None))
    click.echo(f"The sign-in slow-down of {user.username} is lifted ({cleared} count(s) cleared).")


@click.group("kiosk")
def kiosk_group():
    """Kiosk tablets."""


@kiosk_group.command("enroll")
@click.argument("name")
@click.option("--base-url", default="http://127.0.0.1:5000", show_default=True,
              help="The address tablets use to reach this server.")
@with_appcontext
def kiosk_enroll_command(name, base_url):
    """Print a one-time link that makes a tablet's browser the kiosk NAME."""
    from iop.clinic import kiosks
    from iop.store import db

    try:
        with db.transaction():
            device = kiosks.issue_enrollment(name)
    except kiosks.KioskError as exc:
        raise UserError(str(exc)) from None
    click.echo(base_url.rstrip("/") + kiosks.enrollment_path(device))


# ---- cards ---------------------------------------------------------------------------------

@click.command("cards")
@click.option("--client", "client_ids", multiple=True, help="A client_id; repeat for several (default: all active).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The PDF to write.")
@with_appcontext
def cards_command(client_ids, output):
    """Printable QR cards, one per client."""
    from iop.clinic import cards

    try:
        count = cards.write_cards_pdf(list(client_ids), Path(output))
    except cards.CardError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"Wrote {count} card(s) to {output}.")


@click.command("card-code")
@click.argument("client_ids", nargs=-1, required=True)
@click.option("--reissue", is_flag=True, help="Issue new cards first (revokes the old ones).")
@with_appcontext
def card_code_command(client_ids, reissue):
    """Print the QR payload of each named client's current card, one a line."""
    from iop.clinic import cards

    try:
        codes = cards.current_codes(list(client_ids), reissue=reissue)
    except cards.CardError as exc:
        raise UserError(str(exc)) from None
    for code in codes:
        click.echo(code)


# ---- imports and exports -------------------------------------------------------------------

@click.command("import")
@click.argument("kind", type=click.Choice(["groups", "clients", "attendance", "authorizations"]))
@click.argument("file", type=click.Path())
@with_appcontext
def import_command(kind, file):
    """Bulk load a CSV; loads nothing if any row is bad. FILE must be a regular file (not a device or pipe)."""
    from iop.files import import_jobs, imports

    try:
        result = import_jobs.run_here(kind, Path(file), show_progress=sys.stderr.isatty())
    except imports.ImportFailed as exc:
        for problem in exc.problems:  # the first imports.PROBLEMS_SHOWN, then how many more
            click.echo(problem, err=True)
        if exc.more:
            click.echo(f"... {exc.more}", err=True)
        raise UserError(exc.summary) from None
    click.echo(result.summary)


@click.group("export")
def export_group():
    """Hours, attendance, billing days and utilization, as CSV or XLSX; attendance as FHIR R4 for the EHR."""


def _export_command(kind: str):
    @export_group.command(kind)
    @click.option("--from", "start", required=True, help="First date, YYYY-MM-DD.")
    @click.option("--to", "end", required=True, help="Last date, YYYY-MM-DD (inclusive).")
    @click.option("--format", "fmt", default="csv", type=click.Choice(["csv", "xlsx"]), show_default=True)
    @click.option("-o", "--output", type=click.Path(dir_okay=False), help="File to write (stdout when absent).")
    @with_appcontext
    def command(start, end, fmt, output):
        from iop.files import exports

        first, last = _date(start, "--from"), _date(end, "--to")
        if fmt == "xlsx" and not output:
            raise UserError("XLSX needs a file: add -o FILE.xlsx.")
        try:
            rows = exports.export_to(kind, first, last, fmt, Path(output) if output else None, actor=None)
        except exports.ExportError as exc:
            raise UserError(str(exc)) from None
        if output:
            click.echo(f"Wrote {rows} row(s) to {output}.", err=True)

    command.__doc__ = {"hours": "Weekly hours per client.", "attendance": "One row per attendance.",
                       "days": "One row per client per day attended (billing view)."}[kind]
    return command


for _kind in ("hours", "attendance", "days"):
    _export_command(_kind)


@export_group.command("utilization")
@click.option("--on", "on", required=True, help="The date, YYYY-MM-DD: units used, left and over on it.")
@click.option("--format", "fmt", default="csv", type=click.Choice(["csv", "xlsx"]), show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File to write (stdout when absent).")
@with_appcontext
def export_utilization_command(on, fmt, output):
    """Each authorization's units used, left and over on a date, and when they run out."""
    from iop.files import exports

    day = _date(on, "--on")
    if fmt == "xlsx" and not output:
        raise UserError("XLSX needs a file: add -o FILE.xlsx.")
    try:
        rows = exports.export_to("utilization", day, day, fmt, Path(output) if output else None, actor=None)
    except exports.ExportError as exc:
        raise UserError(str(exc)) from None
    if output:
        click.echo(f"Wrote {rows} row(s) to {output}.", err=True)


@export_group.command("fhir")
@click.option("--from", "start", required=True, help="First date, YYYY-MM-DD.")
@click.option("--to", "end", required=True, help="Last date, YYYY-MM-DD (inclusive).")
@click.option("-o", "--output", help="A new (or empty) folder for the NDJSON files.")
@with_appcontext
def export_fhir_command(start, end, output):
    """Attendance as FHIR R4 NDJSON (Encounter, Patient, Practitioner, Group) for the program's EHR."""
    from iop.files import exports, fhir

    first, last = _date(start, "--from"), _date(end, "--to")
    if not output:
        raise UserError("The FHIR export writes a folder of files: add -o FOLDER.")
    try:
        counts = fhir.export_folder(first, last, Path(output))
    except exports.ExportError as exc:
        raise UserError(str(exc)) from None
    written = ", ".join(f"{counts[kind]} {kind}" for kind in fhir.RESOURCE_TYPES)
    click.echo(f"Wrote {written} resource(s) to {output}.", err=True)


# ---- curriculum ----------------------------------------------------------------------------

@click.group("curriculum")
def curriculum_group():
    """The group modules."""


@curriculum_group.command("check")
@with_appcontext
def curriculum_check_command():
    """Validate every curriculum file."""
    from curriculum import check_for_cli

    problems, summary = check_for_cli()
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise UserError(f"{len(problems)} problem(s) in the curriculum.")
    click.echo(summary)


COMMANDS = [
    init_command, demo_command, backup_group, restore_command, serve_command, scheduler_command, user_group,
    kiosk_group, cards_command, card_code_command, import_command, export_group, curriculum_group,
]


def register(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)


def first_line(error: object) -> str:
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
