"""Exports and imports for coordinators, and the audit log for admins: thin views over
iop.files.exports, iop.files.fhir and iop.files.imports."""
from __future__ import annotations

from datetime import date, timedelta

from flask import (
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)

from coordinator import bp, forms
from iop import clock
from iop.clinic import audit
from iop.clock import local_date, program_tz
from iop.files import exports, fhir, import_jobs, imports
from iop.web.auth import current_user, staff_required

AUDIT_PAGE_SIZE = 50
RANGE_KEY = "export_range"
EXPORT_TITLES = {
    "hours": ("Weekly hours", "One row per client per week: target, attended minutes and hours, days, status."),
    "attendance": ("Attendance", "One row per check-in (excused absences included), with credited minutes."),
    "days": ("Billing days", "One row per client per day attended, with credited minutes and whether it was a full day."),
}
IMPORT_TITLES = {
    "groups": ("Groups", "code,name,track,room,weekdays,start,end"),
    "clients": ("Clients and plans",
                "client_id,first_name,last_name,level_of_care,plan_start,plan_end,weekly_hours,days_per_week,groups[,phases]"),
    "attendance": ("Attendance", "client_id,group,date,check_in,check_out[,status[,modality]]"),
    "authorizations": ("Payer authorizations", "client_id,payer,number,service,unit,units,start,end"),
}


def _today() -> date:
    return local_date(clock.now(), program_tz())


def _remembered_range() -> tuple[str, str]:
    first, last = session.get(RANGE_KEY) or ("", "")
    if not first or not last:
        today = _today()
        first = (today - timedelta(days=today.weekday() + 28)).isoformat()  # four whole weeks back
        last = today.isoformat()
    return first, last


def _page(status: int = 200, export_error: str = "", import_failure: tuple[str, imports.ImportFailed] | None = None,
          first: str | None = None, last: str | None = None):
    remembered = _remembered_range()
    return render_template(
        "coordinator/exports.html", export_titles=EXPORT_TITLES, import_titles=IMPORT_TITLES,
        export_columns={kind: exports.column_meanings(kind) for kind in EXPORT_TITLES},
        fhir_files=fhir.RESOURCE_GUIDE, utilization_columns=exports.column_meanings("utilization"), today=_today(),
        first=first if first is not None else remembered[0], last=last if last is not None else remembered[1],
        export_error=export_error, import_failure=import_failure,
        upload_limit_mb=imports.UPLOAD_MAX_BYTES // (1024 * 1024),
    ), status


@bp.route("/exports")
@staff_required("coordinator")
def exports_page():
    return _page()


@bp.route("/exports/<kind>", methods=["POST"])
@staff_required("coordinator")
def export_download(kind: str):
    if kind not in exports.RANGE_KINDS:
        abort(404)
    return _download(lambda first, last, fmt: (exports.web_stream(kind, first, last, fmt, current_user()),
                                               exports.MIMETYPES[fmt], exports.filename(kind, first, last, fmt)))


@bp.route("/exports/fhir", methods=["POST"])
@staff_required("coordinator")
def fhir_download():
    return _download(lambda first, last, _fmt: (fhir.web_stream(first, last, current_user()), fhir.ZIP_MIMETYPE,
                                                fhir.filename(first, last)))


def _download(start):
    """The form's range as a streamed attachment: `start(first, last, format)` gives its chunks, type and name."""
    form = forms.ExportForm()
    try:
        if not form.validate_on_submit():
            raise exports.ExportError(" ".join(form.problems))
        first, last = form.first.value, form.last.value
        exports.check_range(first, last)
        stream, mimetype, name = start(first, last, form.format.data or "csv")
    except exports.ExportError as exc:
        return _page(400, export_error=str(exc), first=form.first.data or "", last=form.last.data or "")
    session[RANGE_KEY] = [first.isoformat(), last.isoformat()]
    return Response(stream_with_context(stream), mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
    })


@bp.route("/imports/<kind>", methods=["POST"])
@staff_required("coordinator")
def import_upload(kind: str):
    if kind not in imports.KINDS:
        abort(404)
    form = forms.ImportForm()
    if not form.validate_on_submit() or form.chosen is None:
        failure = imports.ImportFailed("Nothing was imported: please choose a CSV file first.")
        return _page(400, import_failure=(kind, failure))
    try:
        job_id = import_jobs.start(kind, form.chosen.stream, current_user())
    except imports.ImportFailed as failure:
        return _page(413 if isinstance(failure, imports.UploadTooLarge) else 400, import_failure=(kind, failure))
    return redirect(url_for("coordinator.import_job", job_id=job_id), 303)


def _job_or_404(job_id: str) -> import_jobs.JobState:
    job = import_jobs.state(job_id)
    if job is None:
        abort(404)
    return job


@bp.route("/imports/jobs/<job_id>")
@staff_required("coordinator")
def import_job(job_id: str):
    """The import's progress bar while it runs (polled by import_job.js; refreshed without JS), then its result."""
    job = _job_or_404(job_id)
    return render_template("coordinator/import_job.html", job=job, title=IMPORT_TITLES[job.kind][0])


@bp.route("/imports/jobs/<job_id>.json")
@staff_required("coordinator")
def import_job_status(job_id: str):
    response = jsonify(_job_or_404(job_id).as_json())
    response.headers["Cache-Control"] = "no-store"
    return response


# ---- the audit log (admins) ----------------------------------------------------------------

def _audit_filters() -> tuple[exports.AuditFilter, str]:
    """The filter from the query string, and a message when part of it cannot be read."""
    args = request.args
    return exports.audit_filter(args.get("user", ""), args.get("action", ""), args.get("first", ""),
                                args.get("last", ""), args.get("target", ""))


@bp.route("/audit")
@staff_required("admin")
def audit_log():
    wanted, problem = _audit_filters()
    page = max(1, request.args.get("page", 1, type=int) or 1)
    events, more = exports.audit_page(wanted, page, AUDIT_PAGE_SIZE) if not problem else ([], False)
    users, actions = exports.audit_choices()
    target_label = audit.target_labels([wanted.target]).get(wanted.target, wanted.target) if wanted.target else ""
    return render_template(
        "coordinator/audit.html", lines=exports.readable(events), wanted=wanted, problem=problem, page=page,
        more=more, users=users, actions=actions, tz=program_tz(), query=wanted.query_args(), target_label=target_label,
    ), 400 if problem else 200


@bp.route("/audit.csv")
@staff_required("admin")
def audit_download():
    wanted, problem = _audit_filters()
    if problem:
        flash(problem)
        return redirect(url_for("coordinator.audit_log"))
    return Response(stream_with_context(exports.audit_csv_stream(wanted, current_user())),
                    mimetype=exports.MIMETYPES["csv"], headers={
                        "Content-Disposition": 'attachment; filename="audit-log.csv"',
                        "Cache-Control": "no-store",
                    })
