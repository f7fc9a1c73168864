from flask import render_template

from coordinator import bp
from iop.auth import staff_required


@bp.route("/")
@staff_required("coordinator")
def home():
    return render_template("coordinator/home.html")
