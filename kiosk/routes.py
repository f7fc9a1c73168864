from flask import render_template

from kiosk import bp


@bp.route("/")
def page():
    return render_template("kiosk/not_enrolled.html")
