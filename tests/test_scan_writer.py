"""The scan writer: scans that arrive together are written in one transaction, each with its own answer;
a scan that cannot be written with the others (a race lost, a kiosk revoked meanwhile) sends the
batch back to one scan at a time, so no scan's answer depends on another's."""
from __future__ import annotations

import secrets
import threading

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from iop import clock
from iop.clinic import cards, scan, scan_batch
from iop.store import db
from iop.store.models import Attendance, KioskDevice, Scan


@pytest.fixture
def people(kiosk_scene, world):
    """Maria (kiosk_scene) and two more clients of the same group."""
    ana = world.client("C2", "Ana", "Lopez", groups=[kiosk_scene.group], plan_start=kiosk_scene.day, weekly_hours=9)
    ben = world.client("C3", "Ben", "Okafor", groups=[kiosk_scene.group], plan_start=kiosk_scene.day, weekly_hours=9)
    return kiosk_scene.maria, ana, ben


def pending(kiosk_id: int, client, scan_id: str | None = None, check_out: bool = False) -> scan.PendingScan:
    now = clock.now()
    token = cards.read_card(cards.card_code(client.id, client.card_version))
    return scan.PendingScan(kiosk_id, scan_id or secrets.token_hex(8), token, None, now, now, check_out)


def write(batch: list[scan.PendingScan]) -> list[scan_batch.Waiting]:
    """The batch through the app's scan writer, as its thread writes it; each one's answer or error."""
    waiting = [scan_batch.Waiting(item) for item in batch]
    scan.writer().write_batch(waiting)
    return waiting


def commits_during(app, work) -> int:
    engine = db.database(app).engine
    count = [0]

    def note(_connection):
        count[0] += 1

    event.listen(engine, "commit", note)
    try:
        work()
    finally:
        event.remove(engine, "commit", note)
    return count[0]


def rows(model):
    return db.session().scalars(select(model)).all()


def test_scans_arriving_together_are_one_transaction_with_each_its_own_answer(app, ctx, kiosk_scene, people):
    maria, ana, ben = people
    kiosk = kiosk_scene.device.id
    batch = [pending(kiosk, maria), pending(kiosk, ana), pending(kiosk, maria), pending(kiosk, ben)]
    written = []
    assert commits_during(app, lambda: written.extend(write(batch))) == 1
    assert [s.error for s in written] == [None] * 4
    # Maria's second scan sees her first (same transaction); each greeting names its own scanner.
    assert [s.answer.code for s in written] == ["checked_in", "checked_in", "already_checked_in", "checked_in"]
    assert [s.answer.body["client"]["display_name"] for s in written] == ["Maria G.", "Ana L.", "Maria G.", "Ben O."]
    assert all(s.answer.body["week"]["target_minutes"] == 540 for s in written)
    db.session().rollback()
    assert sorted(r.client_key for r in rows(Attendance)) == sorted([maria.id, ana.id, ben.id])
    assert sorted(s.scan_id for s in rows(Scan)) == sorted(s.scan_id for s in batch)


def test_a_scan_sent_twice_in_one_batch_is_counted_once(app, ctx, kiosk_scene, people):
    """A kiosk's resend can arrive while its first send still waits: the batch goes one by one, and
    the resend gets the first's stored answer."""
    maria, ana, _ben = people
    kiosk = kiosk_scene.device.id
    batch = [pending(kiosk, maria, "maria-first-1"), pending(kiosk, ana), pending(kiosk, maria, "maria-first-1")]
    written = write(batch)
    assert [s.answer.code for s in written] == ["checked_in", "checked_in", "checked_in"]
    assert written[2].answer.body == written[0].answer.body
    db.session().rollback()
    assert sorted(r.client_key for r in rows(Attendance)) == sorted([maria.id, ana.id])
    assert len(rows(Scan)) == 2


def test_the_greetings_of_a_batch_show_each_clients_own_week(app, ctx, kiosk_scene, people, world, freeze):
    """Hours are read for the whole batch at once: each answer still counts only its own client's
    minutes and plan."""
    from helpers.world import local

    maria, ana, _ben = people
    kiosk = kiosk_scene.device.id
    monday = kiosk_scene.day
    freeze(local(monday, 8, 55))
    write([pending(kiosk, maria)])  # Maria in at 8:55 (credited from 9:00)
    freeze(local(monday, 10, 30))
    batch = [pending(kiosk, maria, check_out=True), pending(kiosk, ana)]
    written = write(batch)
    assert [s.answer.code for s in written] == ["checked_out", "checked_in"]
    assert written[0].answer.body["week"]["attended_minutes"] == 90
    assert written[0].answer.body["today"]["attended_minutes"] == 90
    assert written[1].answer.body["week"]["attended_minutes"] == 0


def test_a_lost_race_in_a_batch_writes_the_others_and_answers_it_as_stored(app, ctx, kiosk_scene, people, monkeypatch):
    """Another process stored this scan_id between the decision and the write (its retry won the race):
    the batch rolls back, every scan is written alone, and the loser gets the stored answer."""
    maria, ana, ben = people
    kiosk = kiosk_scene.device.id
    real_store = scan._store
    raced = {"done": False}

    def store(new):
        if any(pending.scan_id == "raced-scan-1" for pending, _answer in new) and not raced["done"]:
            raced["done"] = True
            raise IntegrityError("INSERT INTO scan", {}, Exception("duplicate key"))
        return real_store(new)

    monkeypatch.setattr(scan, "_store", store)
    batch = [pending(kiosk, maria), pending(kiosk, ana, "raced-scan-1"), pending(kiosk, ben)]
    written = []
    commits = commits_during(app, lambda: written.extend(write(batch)))
    assert commits == 3  # the batch's transaction rolled back; one each after
    assert [s.answer.code for s in written] == ["checked_in", "checked_in", "checked_in"]
    db.session().rollback()
    assert sorted(r.client_key for r in rows(Attendance)) == sorted([maria.id, ana.id, ben.id])
    assert sorted(s.scan_id for s in rows(Scan)) == sorted(s.scan_id for s in batch)


def test_a_kiosk_revoked_meanwhile_gets_nothing_written_and_the_others_are_kept(app, ctx, kiosk_scene, people, world):
    maria, ana, _ben = people
    other, _cookie = world.kiosk("Side door")
    with db.transaction() as s:  # revoked by another process: this one still holds its cookie
        s.execute(update(KioskDevice).where(KioskDevice.id == other.id).values(revoked_at=clock.now()))
    batch = [pending(kiosk_scene.device.id, maria), pending(other.id, ana)]
    written = write(batch)
    assert written[0].answer.code == "checked_in"
    assert written[1].answer.status == 403 and written[1].answer.code == "not_enrolled"
    db.session().rollback()
    assert [r.client_key for r in rows(Attendance)] == [maria.id]
    assert [s.kiosk_id for s in rows(Scan)] == [kiosk_scene.device.id]


def test_an_unreachable_database_is_told_to_every_waiting_scan_and_nothing_is_written(app, ctx, kiosk_scene, people,
                                                                                     monkeypatch):
    maria, ana, _ben = people
    calls = []

    def down(*args, **kwargs):
        calls.append(1)
        raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(scan, "decide", down)
    batch = [pending(kiosk_scene.device.id, maria), pending(kiosk_scene.device.id, ana)]
    written = write(batch)
    assert all(isinstance(s.error, OperationalError) and s.answer is None for s in written)
    assert len(calls) == 1  # not tried again scan by scan: the kiosks queue and resend
    db.session().rollback()
    assert rows(Attendance) == [] and rows(Scan) == []


def test_parallel_requests_are_answered_by_one_writer_thread(app, kiosk_scene, people):
    """Through the view: ten kiosks' requests at once; every answer is right and only the writer's
    thread touched the database for them."""
    maria, ana, ben = people
    writers = set()
    real_decide = scan.decide

    def decide(*args, **kwargs):
        writers.add(threading.current_thread().name)
        return real_decide(*args, **kwargs)

    codes = [kiosk_scene.card(person) for person in (maria, ana, ben)] * 3
    answers = [None] * len(codes)
    start = threading.Barrier(len(codes))

    def kiosk(n):
        http = app.test_client()
        http.set_cookie("iop_kiosk", kiosk_scene.cookie, path="/kiosk")
        start.wait()
        answers[n] = http.post("/kiosk/api/scan", json={"code": codes[n], "scan_id": secrets.token_hex(8)})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan, "decide", decide)
        threads = [threading.Thread(target=kiosk, args=(n,)) for n in range(len(codes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert [a.status_code for a in answers] == [200] * len(codes)
    results = sorted(a.get_json()["result"] for a in answers)
    assert results == ["already_checked_in"] * 6 + ["checked_in"] * 3
    assert writers == {"iop-scan-writer"}
    with app.app_context():
        assert len(rows(Attendance)) == 3


def test_the_kiosk_api_neither_reads_nor_refreshes_a_staff_session(app, client, auth, kiosk_scene):
    """A tablet once used to sign in: its scans still work, carry no session cookie back, and the
    staff session is left as it was (the kiosk API acts only for the kiosk its own cookie names)."""
    assert auth.login(role="facilitator").status_code in (302, 303)
    response = kiosk_scene.scan(kiosk_scene.card(kiosk_scene.maria))
    assert response.status_code == 200 and response.get_json()["result"] == "checked_in"
    assert not any(h.startswith("session=") for h in response.headers.getlist("Set-Cookie"))
    assert client.get("/facilitator/").status_code == 200  # still signed in
