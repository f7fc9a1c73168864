"""The facilitator's pages: today's groups, the live control page, the room display, close and summary.

Thin views: the rules and writes live in iop.live, iop.attendance and iop.roster.
"""
from __future__ import annotations

from flask import flash, jsonify, make_response, redirect, render_template, request, url_for

from curriculum import markup
from facilitator import bp
from iop import clock, config
from iop.clinic import audit
from iop.clinic.sessions import ensure_sessions_for
from iop.clock import local_date, program_tz
from iop.live import facilitation, realtime, roster
from iop.live.facilitation import LiveError
from iop.store import db
from iop.web.auth import current_user, staff_required

STATUS_WORDS = {"scheduled": "Not started", "open": "Open", "closed": "Closed", "cancelled": "Cancelled"}


@bp.context_processor
def _helpers():
    return {"time_text": clock.time_text, "date_text": facilitation.date_text, "status_text": status_text,
            "step_html": markup.to_html}


def status_text(group_session) -> str:
    if group_session.status == "open" and group_session.started_at is not None:
        return "Running"
    if group_session.status == "open":
        return "Open for check-in"
    return STATUS_WORDS.get(group_session.status, group_session.status)


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


def _refused(exc: LiveError, back: str | None = None):
    """A refusal in the person's words: JSON for scripts, a flash and a way back for forms, else a page."""
    if _wants_json():
        return jsonify(error=exc.as_dict()), exc.status
    if back is not None:
        flash(exc.message)
        return redirect(back, code=303)
    return render_template("error.html", status=exc.status, message=exc.message), exc.status


def _session_for_staff(session_id: int):
    """The session, when the signed-in user may run it (else LiveError)."""
    group_session = facilitation.find_session(session_id)
    facilitation.require_may_run(current_user(), group_session)
    return group_session


# ---- today's groups --------------------------------------------------------------------------

@bp.route("/")
@staff_required("facilitator")
def home():
    user = current_user()
    now = clock.now()
    today = local_date(now, program_tz())
    with db.transaction():
        group_sessions = ensure_sessions_for(today)
    # The signed-in facilitator's own groups first, then by start time.
    group_sessions.sort(key=lambda m: (m.facilitator_id != user.id, m.starts_at))
    counts = roster.checked_in_counts([m.id for m in group_sessions])
    rows = [{"group_session": m, "module": facilitation.module_of(m), "checked_in": counts.get(m.id, 0), "mine": m.facilitator_id == user.id,
             "may_run": facilitation.may_run(user, m)} for m in group_sessions]
    return render_template("facilitator/home.html", rows=rows, today=today)


# ---- the control page ------------------------------------------------------------------------

@bp.route("/sessions/<int:session_id>")
@staff_required("facilitator")
def control(session_id: int):
    try:
        group_session = _session_for_staff(session_id)
    except LiveError as exc:
        return _refused(exc)
    if group_session.status == "closed":
        return redirect(url_for("facilitator.summary", session_id=group_session.id))
    module = facilitation.module_of(group_session)
    state = facilitation.staff_state(group_session)
    with db.transaction():  # the roster names everyone checked in
        audit.record("session.control_view", target=f"session:{group_session.id}")
    live_data = {
        "session_id": group_session.id,
        "state": state,
        "steps": [{"title": s.title, "kind": s.kind, "minutes": s.minutes,
                   "room_html": markup.to_html(s.room, "room"), "notes_html": markup.to_html(s.notes, "notes")}
                  for s in (module.steps if module else ())],
        "attendance_url": url_for("facilitator.attendance", session_id=group_session.id),
        "summary_url": url_for("facilitator.summary", session_id=group_session.id),
        "timezone": program_tz().key,
    }
    return render_template(
        "facilitator/control.html", group_session=group_session, module=module, state=state, live_data=live_data,
        choices=facilitation.module_choices(group_session) if facilitation.can_choose_module(group_session) else [],
        display_url=url_for("facilitator.display", token=facilitation.display_token(group_session.id)))


@bp.route("/sessions/<int:session_id>/module", methods=["POST"])
@staff_required("facilitator")
def choose_module(session_id: int):
    back = url_for("facilitator.control", session_id=session_id)
    try:
        with db.transaction():
            group_session = facilitation.find_session(session_id, for_update=True)
            module = facilitation.choose_module(group_session, request.form.get("module_id", ""), current_user())
    except LiveError as exc:
        return _refused(exc, back)
    realtime.emit_to_session("step", facilitation.public_state(group_session), group_session.id)
    flash(f"This group will run “{module.title}”.")
    return redirect(back, code=303)


@bp.route("/sessions/<int:session_id>/attendance", methods=["POST"])
@staff_required("facilitator")
def attendance(session_id: int):
    """Check in, check out or excuse a client by hand (no card, forgot to scan): audited with the reason."""
    data = request.get_json(silent=True) if request.is_json else request.form
    back = url_for("facilitator.control", session_id=session_id)
    try:
        if not hasattr(data, "get"):
            raise LiveError("bad_request", "That request could not be read.")
        with db.transaction():
            group_session = facilitation.find_session(session_id, for_update=True)
            message = facilitation.record_by_hand(group_session, data.get("action"), data.get("client"), data.get("reason"),
                                          data.get("at"), current_user(), clock.now())
    except LiveError as exc:
        return _refused(exc, back)
    roster.publish(group_session.id)
    if _wants_json():
        return jsonify(ok=True, message=message)
    flash(message)
    return redirect(back, code=303)


@bp.route("/sessions/<int:session_id>/close", methods=["POST"])
@staff_required("facilitator")
def close(session_id: int):
    summary_url = url_for("facilitator.summary", session_id=session_id)
    try:
        with db.transaction():
            group_session = facilitation.find_session(session_id, for_update=True)
            checked_out = facilitation.close(group_session, current_user(), clock.now())
    except LiveError as exc:
        if exc.code == "already_closed":
            return _refused(exc, summary_url)
        return _refused(exc, url_for("facilitator.control", session_id=session_id))
    realtime.emit_to_session("closed", {"session_id": group_session.id}, group_session.id)
    roster.publish(group_session.id)
    words = {0: "Nobody was still checked in.", 1: "1 client still checked in was checked out."}
    flash("Group closed. " + words.get(checked_out, f"{checked_out} clients still checked in were checked out."))
    if _wants_json():
        return jsonify(ok=True, checked_out=checked_out, summary=summary_url)
    return redirect(summary_url, code=303)


# ---- a module, to read or print before the group ----------------------------------------------

@bp.route("/modules/<module_id>")
@staff_required("facilitator")
def module_page(module_id: str):
    """Every step of a module: its room text as the display shows it, and the presenter notes."""
    from curriculum.catalog import catalog

    module = catalog().module(module_id)
    if module is None:
        return render_template("error.html", status=404, message="There is no such module."), 404
    return render_template("facilitator/module.html", module=module, track=catalog().tracks.get(module.track))


# ---- the session summary and its group note --------------------------------------------------

@bp.route("/sessions/<int:session_id>/summary")
@staff_required("facilitator")
def summary(session_id: int):
    try:
        group_session = _session_for_staff(session_id)
    except LiveError as exc:
        return _refused(exc)
    report = facilitation.summary(group_session)
    with db.transaction():
        audit.record("session.summary_view", target=f"session:{group_session.id}")
    note = group_session.note_text if group_session.note_text is not None else facilitation.draft_note(report)
    return render_template("facilitator/summary.html", group_session=group_session, report=report, note=note,
                           grace=config.grace_minutes())


@bp.route("/sessions/<int:session_id>/note", methods=["POST"])
@staff_required("facilitator")
def note(session_id: int):
    back = url_for("facilitator.summary", session_id=session_id)
    sign = request.form.get("action") == "sign"
    try:
        with db.transaction():
            group_session = facilitation.find_session(session_id, for_update=True)
            facilitation.save_note(group_session, request.form.get("note_text", ""), current_user(), sign, clock.now())
    except LiveError as exc:
        return _refused(exc, back)
    flash("The group note is signed and stored with the session." if sign else "The note draft is saved.")
    return redirect(back, code=303)


# ---- the room display ------------------------------------------------------------------------

@bp.route("/display/<token>")
def display(token: str):
    """The room's screen: no staff sign-in, only a signed link bound to one session (docs/security.md)."""
    theme = "dark" if request.args.get("theme") == "dark" else "light"
    try:
        group_session = facilitation.display_session(token)
    except LiveError as exc:
        response = render_template("facilitator/display_gone.html", message=exc.message, theme=theme,
                                   staff=None), exc.status
    else:
        response = render_template("facilitator/display.html", state=facilitation.public_state(group_session), token=token,
                                   theme=theme, staff=None)
    response = make_response(response)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the link is the key: never hand it to another site
    response.headers["X-Robots-Tag"] = "noindex"
    return response
