"""gunicorn settings for one IOP Kiosk web process (used by systemd/iop-web@.service).

    gunicorn --config deploy/gunicorn.conf.py --bind 127.0.0.1:8001 iop.wsgi:app

Threading mode, ONE worker per process: a Socket.IO connection lives in the process that accepted
it, so run more processes behind the proxy (sticky) to grow, never more workers in one. Each
connected screen (room display, facilitator page, kiosk) holds one thread for its WebSocket, so
IOP_THREADS must cover the screens this process serves plus the kiosks' requests at once.
"""
import os

worker_class = "gthread"
workers = 1
threads = int(os.environ.get("IOP_THREADS", "100"))
bind = os.environ.get("IOP_BIND", "127.0.0.1:8001")
# A WebSocket is a long request; the worker's heartbeat is its main loop, so no request timeout
# applies to it. Stop quickly on restart: screens reconnect (to this or another process) by themselves.
timeout = 60
graceful_timeout = 5
keepalive = 5
# No access log: request lines carry opaque ids only, but the app's own log is the one to read.
accesslog = None
errorlog = "-"
loglevel = "info"
# Trust X-Forwarded-* from the proxy on this host only (the app applies ProxyFix for IOP_PROXY_HOPS hops).
forwarded_allow_ips = "127.0.0.1,::1"
