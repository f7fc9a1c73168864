"""The client-facing check-in page and the scan API."""
from flask import Blueprint

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk", template_folder="templates", static_folder="static")

from kiosk import routes  # noqa: E402,F401  (routes attach to bp)
