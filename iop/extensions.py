"""The Flask extensions, made once at import and bound to the app in `create_app` (init_app)."""
from __future__ import annotations

from flask_compress import Compress
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect

socketio = SocketIO()
csrf = CSRFProtect()
compress = Compress()
