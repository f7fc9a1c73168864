"""Clients and plans, the week's hours, exports, cards and kiosks."""
from flask import Blueprint

bp = Blueprint("coordinator", __name__, url_prefix="/coordinator", template_folder="templates",
               static_folder="static")

from coordinator import (
               backup_routes,  # noqa: E402,F401
               billing_routes,  # noqa: E402,F401
               curriculum_routes,  # noqa: E402,F401
               data_routes,  # noqa: E402,F401
               kiosk_routes,  # noqa: E402,F401
               routes,  # noqa: E402,F401
               staff_routes,  # noqa: E402,F401
)
