"""The Backups page (admins): the backups in the backup folder with their time, size and check, and
the last scheduled backup's failure. A thin view over iop.ops.backup, which reads the folder."""
from __future__ import annotations

from flask import current_app, render_template

from coordinator import bp
from iop.web.auth import staff_required


@bp.route("/backups")
@staff_required("admin")
def backups_page():
    from iop.ops import backup

    app = current_app._get_current_object()
    return render_template("coordinator/backups.html", backups=backup.backups(app), health=backup.health(app),
                           failure=backup.last_failure(app), folder=backup.backup_dir(app),
                           every=app.config["BACKUP_EVERY_HOURS"], keep=app.config["BACKUP_KEEP"],
                           encrypted=bool(app.config.get("BACKUP_KEY")))
