"""The curriculum page: what the server is serving, what is wrong in the files, and a reload."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from coordinator import bp
from curriculum import active_group_lengths
from curriculum.catalog import catalog, reload
from curriculum.validate import group_fit_problems
from iop.clinic import audit
from iop.store import db
from iop.web.auth import staff_required


@bp.route("/curriculum")
@staff_required("coordinator")
def curriculum():
    served = catalog()
    groups = active_group_lengths() or []
    # Group lengths are checked against today's groups each time: they change without a reload.
    problems = served.problems + group_fit_problems(served, groups)
    return render_template("coordinator/curriculum.html", catalog=served, problems=problems)


@bp.route("/curriculum/reload", methods=["POST"])
@staff_required("coordinator")
def curriculum_reload():
    fresh = reload()
    with db.transaction():
        audit.record("curriculum.reload", target="curriculum", modules=len(fresh.modules),
                     problems=len(fresh.problems))
    if fresh.problems:
        flash(f"Reloaded. {len(fresh.modules)} modules are in use; the {len(fresh.problems)} problem(s) "
              "below keep those files out until they are fixed.")
    else:
        flash(f"Reloaded. {len(fresh.modules)} modules are in use, with no problems.")
    return redirect(url_for("coordinator.curriculum"))
