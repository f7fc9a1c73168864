"""The application for a production WSGI server (deploy/README.md):

    gunicorn --worker-class gthread --workers 1 --threads 100 --bind 127.0.0.1:8001 iop.wsgi:app

One worker per process: Socket.IO keeps each screen's connection in the process that accepted it, so
more processes (behind a proxy with sticky sessions, sharing IOP_REDIS_URL) scale out, not more
workers. Threads hold the screens' WebSocket connections, so give enough for every connected screen
plus the kiosks. Settings come from the environment as for `iop serve`; run `iop init` once before.
Behind the proxy, IOP_PROXY_HOPS=1 (deploy/iop.env) makes its X-Forwarded-* headers trusted.
"""
from __future__ import annotations

from iop import create_app
from iop.ops import scheduler

app = create_app()
if app.config["SCHEDULER"]:
    # A single-process deployment runs its jobs here; with several processes set IOP_SCHEDULER=off
    # and run the one `iop scheduler`.
    scheduler.start(app)

