from flask import render_template

from facilitator import bp
from iop.auth import staff_required


@bp.route("/")
@staff_required("facilitator")
def home():
    return render_template("facilitator/home.html")
