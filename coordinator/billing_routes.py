"""Payer authorizations on the client page, the utilization page and its export: thin views over
iop.clinic.authorizations and iop.files.exports."""
from __future__ import annotations

from datetime import date, timedelta

from flask import Response, abort, flash, jsonify, redirect, render_template, request, stream_with_context, url_for

from coordinator import bp, forms
from iop import clock
from iop.clinic import audit, authorizations, program
from iop.clock import local_date, program_tz
from iop.files import exports
from iop.rules.authorizations import STATUSES
from iop.store import db
from iop.web.auth import current_user, staff_required


def _today() -> date:
    return local_date(clock.now(), program_tz())


def _client_or_404(public_id: str):
    client = program.client_record(public_id)
    if client is None:
        abort(404)
    return client


@bp.app_context_processor
def _billing_words():
    return {"auth_badge_class": authorizations.BADGE_CLASS, "auth_badge_icon": authorizations.BADGE_ICON,
            "auth_status_words": authorizations.STATUS_WORDS, "auth_mark_words": authorizations.MARK_WORDS}


# ---- authorizations on the client page ---------------------------------------------------------

def _authorization_page(client, record, form: forms.AuthorizationForm):
    return render_template("coordinator/authorization_form.html", client=client, record=record, form=form), \
        400 if form.problems else 200


def _save(client, record):
    form = forms.AuthorizationForm()
    if form.validate_on_submit():
        try:
            with db.transaction():
                authorizations.save(client, form.fields(), current_user(), record)
        except authorizations.AuthorizationError as exc:
            form.refused(exc)
        else:
            flash("The authorization is saved.")
            return redirect(url_for("coordinator.client_page", public_id=client.public_id) + "#authorizations-title")
    return _authorization_page(client, record, form)


@bp.route("/clients/<public_id>/authorizations/new", methods=["GET", "POST"])
@staff_required("coordinator")
def authorization_new(public_id: str):
    client = _client_or_404(public_id)
    if request.method == "POST":
        return _save(client, None)
    return _authorization_page(client, None, forms.AuthorizationForm.fresh(_today()))


@bp.route("/clients/<public_id>/authorizations/<int:authorization_id>/edit", methods=["GET", "POST"])
@staff_required("coordinator")
def authorization_edit(public_id: str, authorization_id: int):
    client = _client_or_404(public_id)
    record = authorizations.find(client, authorization_id)
    if record is None:
        abort(404)
    if request.method == "POST":
        return _save(client, record)
    return _authorization_page(client, record, forms.AuthorizationForm.of(record))


# ---- the week board's marks -------------------------------------------------------------------

@bp.route("/authorization-marks")
@staff_required("coordinator")
def authorization_marks():
    """The week board's authorization marks, fetched by the board once it is shown: counting every
    authorization's units reads a quarter of attendance, which the board itself should not wait for."""
    from iop.rules import entry, hours

    today = _today()
    try:
        asked = entry.day(request.args.get("week", ""), entry.Field("week", "The week", needed=False))
    except entry.EntryError as exc:
        return jsonify(error={"code": "bad_request", "message": exc.message}), 400
    monday = hours.week_start(asked or today)
    sunday = monday + timedelta(days=6)
    group_code = request.args.get("group", "").strip()  # the board's group: only its members are marked
    found = authorizations.board_marks(monday, sunday, min(today, sunday), clock.now(), group_code)
    return jsonify(marks={public_id: [{"mark": mark, "words": authorizations.MARK_WORDS[mark],
                                       "kind": authorizations.BADGE_CLASS[mark], "icon": authorizations.BADGE_ICON[mark]}
                                      for mark in marks] for public_id, marks in found.items()})


# ---- the utilization page ----------------------------------------------------------------------

@bp.route("/utilization")
@staff_required("coordinator")
def utilization():
    today = _today()
    form = forms.UtilizationForm(request.args)
    form.validate()
    first = form.first.value or today.replace(day=1)  # this month so far, unless asked otherwise
    last = form.last.value or max(first, today)
    problem = " ".join(form.problems)
    if first > last:
        problem, first, last = "The range is reversed: the first date is after the last.", today, today
    on = min(last, today)
    payer = (form.payer.data or "").strip()
    status = (form.status.data or "").strip()
    if status not in STATUSES:
        status = ""
    sort = request.args.get("sort", "client")
    if sort not in authorizations.SORTS:
        sort = "client"
    descending = request.args.get("order") == "desc"
    found = authorizations.page_rows(first, last, on, clock.now(), payer, status, sort, descending,
                                     request.args.get("page", 1, type=int) or 1)
    uncovered = authorizations.uncovered_days(first, on, clock.now())
    with db.transaction():  # a page of names and payers: who looked, and at what, is in the audit log
        audit.record("utilization.view", target="utilization", first=first.isoformat(), last=last.isoformat(),
                     rows=len(found.page.rows), total=found.page.total, page=found.page.number, uncovered=len(uncovered),
                     sort=sort, order="desc" if descending else "asc",
                     **{name: value for name, value in (("payer", payer), ("status", status)) if value})
    args = {"first": first.isoformat(), "last": last.isoformat(),  # what every sort and page link keeps
            **{name: value for name, value in (("payer", payer), ("status", status)) if value}}
    return render_template("coordinator/utilization.html", rows=found.page.rows, page=found.page,
                           payers=found.payers, statuses=STATUSES, first=first, last=last, on=on, payer=payer,
                           status=status, sort=sort, descending=descending, args=args,
                           sort_words=authorizations.SORT_WORDS, uncovered=uncovered, problem=problem,
                           client_base=url_for("coordinator.client_page", public_id="-")[:-1]), \
        400 if problem else 200


@bp.route("/exports/utilization", methods=["POST"])
@staff_required("coordinator")
def utilization_download():
    form = forms.UtilizationExportForm()
    fmt = form.format.data or "csv"
    if not form.validate_on_submit() or fmt not in exports.FORMATS:
        flash(" ".join(form.problems) or "The format must be csv or xlsx.")
        return redirect(url_for("coordinator.exports_page"))
    on = form.on.value
    stream = exports.web_stream("utilization", on, on, fmt, current_user())
    return Response(stream_with_context(stream), mimetype=exports.MIMETYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="{exports.filename("utilization", on, on, fmt)}"',
        "Cache-Control": "no-store",
    })
