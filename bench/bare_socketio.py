"""The baseline for bench_fanout.py: a bare Flask-SocketIO server (threading mode, as the app runs)
that only joins clients to a room and broadcasts what it is told. Served by gunicorn like the app:

    gunicorn --worker-class gthread --workers 1 --threads 256 --chdir bench bare_socketio:app
"""
from flask import Flask
from flask_socketio import SocketIO, emit, join_room

app = Flask(__name__)
socketio = SocketIO(app, async_mode="threading", logger=False, engineio_logger=False)


@socketio.on("join")
def on_join(data):
    join_room("room")
    emit("state", {"joined": True})


@socketio.on("go")
def on_go(payload):
    """The facilitator's Next, without a database: broadcast the payload to the room."""
    socketio.emit("step", payload, to="room")
