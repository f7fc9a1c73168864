"""Today's sessions, live control, the room display and their Socket.IO events."""
from flask import Blueprint

bp = Blueprint("facilitator", __name__, url_prefix="/facilitator", template_folder="templates",
               static_folder="static")

from facilitator import live, routes  # noqa: E402,F401

bp.record(live.register)
