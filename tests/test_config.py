"""Configuration from the environment, exactly as docs/interface.md ("Settings") lists it."""
import os
import stat

import pytest

from iop import create_app
from iop.config import DEFAULTS, ConfigError, finish, from_environment


def settings(env):
    values = dict(DEFAULTS)
    values.update(from_environment(env))
    finish(values)
    return values


def test_defaults_make_instance_folder_and_sqlite_database(tmp_path):
    values = settings({"IOP_INSTANCE_PATH": str(tmp_path / "inst")})
    assert values["DATABASE_URL"] == f"sqlite:///{tmp_path / 'inst' / 'iop.sqlite3'}"
    assert values["TIMEZONE"] == "America/New_York"
    assert values["SCHEDULER"] is True
    assert values["REDIS_URL"] is None


def test_secret_key_is_generated_once_with_mode_0600(tmp_path):
    env = {"IOP_INSTANCE_PATH": str(tmp_path)}
    first = settings(env)["SECRET_KEY"]
    second = settings(env)["SECRET_KEY"]
    assert first == second and len(first) >= 32
    assert stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode) == 0o600


def test_environment_values_are_used(tmp_path):
    values = settings({
        "IOP_INSTANCE_PATH": str(tmp_path),
        "IOP_DATABASE_URL": "postgresql+psycopg://127.0.0.1/test",
        "IOP_REDIS_URL": "redis://127.0.0.1:6379/0",
        "IOP_SECRET_KEY": "from-env",
        "IOP_TIMEZONE": "America/Chicago",
        "IOP_SCHEDULER": "off",
    })
    assert values["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert values["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert values["SECRET_KEY"] == "from-env"
    assert values["TIMEZONE"] == "America/Chicago"
    assert values["SCHEDULER"] is False
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("env, words", [
    ({"IOP_TIMEZONE": "Mars/Olympus"}, "IOP_TIMEZONE"),
    ({"IOP_SCHEDULER": "sometimes"}, "IOP_SCHEDULER"),
    ({"IOP_DATABASE_URL": "not a url"}, "IOP_DATABASE_URL"),
    ({"IOP_DATABASE_URL": "mysql://x/y"}, "SQLite or PostgreSQL"),
    ({"IOP_REDIS_URL": "http://nope"}, "IOP_REDIS_URL"),
])
def test_bad_values_give_one_clear_line(tmp_path, env, words):
    with pytest.raises(ConfigError) as excinfo:
        settings({"IOP_INSTANCE_PATH": str(tmp_path), **env})
    assert words in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_unwritable_instance_folder_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot be written"):
        settings({"IOP_INSTANCE_PATH": str(blocker / "inside")})


def test_server_processes_starting_together_all_find_the_instance_folder_writable(tmp_path):
    """Two gunicorn processes of one deployment start at once: each checks the folder on its own."""
    import threading

    failures = []

    def start():
        for _ in range(200):
            try:
                finish({**DEFAULTS, "INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "k" * 40})
            except ConfigError as exc:
                failures.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_test_config_does_not_read_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("IOP_TIMEZONE", "Mars/Olympus")
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k", "TIMEZONE": "America/Denver"})
    assert app.config["TIMEZONE"] == "America/Denver"
    assert app.instance_path == str(tmp_path)
