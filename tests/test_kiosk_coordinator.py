"""The coordinator's kiosk and card pages: setup links shown once, rename, revoke, chime, print, reissue."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from iop.clinic import cards, kiosks
from iop.store import db
from iop.store.models import AuditEvent, Client, KioskDevice


@pytest.fixture
def coordinator(auth):
    auth.login("casey", role="coordinator")
    return auth


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_kiosk_and_card_pages_need_a_coordinator(client, auth):
    for path in ("/coordinator/kiosks", "/coordinator/cards"):
        assert client.get(path).status_code == 302  # to sign-in
    auth.login("dana", role="facilitator")
    for path in ("/coordinator/kiosks", "/coordinator/cards"):
        assert client.get(path).status_code == 403
    assert client.post("/coordinator/kiosks", data={"name": "X", "csrf_token": auth.csrf()}).status_code == 403
    with client.application.app_context():
        assert db.session().scalars(select(KioskDevice)).all() == []


def test_a_setup_link_is_shown_once_with_a_qr_code_and_works(app, client, coordinator, monkeypatch):
    from iop.ops import serving

    # `iop serve --host 0.0.0.0` on a computer whose network address is 192.168.1.20.
    monkeypatch.setattr(serving, "lan_addresses", lambda: ["192.168.1.20"])
    app.config["SERVE_REACH"] = serving.Reach("0.0.0.0", 5000, https=False)
    page = client.get("/coordinator/kiosks").get_data(as_text=True)
    made = client.post("/coordinator/kiosks", data={"name": "Front desk", "csrf_token": form_token(page)})
    html = made.get_data(as_text=True)
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    link = re.search(r'<code class="setup-link">(http://192.168.1.20:5000/kiosk/enroll/[^<]+)</code>', html).group(1)
    assert '<div class="setup-qr"><svg' in html  # the link as a QR code for the tablet's camera
    again = client.get("/coordinator/kiosks").get_data(as_text=True)
    assert link not in again and "Front desk" in again and "Link not used yet" in again
    tablet = app.test_client()
    confirm = tablet.get(link.removeprefix("http://192.168.1.20:5000"))
    assert "Set up this tablet as kiosk “Front desk”" in confirm.get_data(as_text=True)
    tablet.post(link.removeprefix("http://192.168.1.20:5000"),
                data={"csrf_token": form_token(confirm.get_data(as_text=True))})
    assert 'id="scan-input"' in tablet.get("/kiosk/").get_data(as_text=True)
    assert "Working" in client.get("/coordinator/kiosks").get_data(as_text=True)


def test_a_bad_name_is_a_clear_message(client, coordinator):
    page = client.get("/coordinator/kiosks").get_data(as_text=True)
    answer = client.post("/coordinator/kiosks", data={"name": "  ", "csrf_token": form_token(page)},
                         follow_redirects=True)
    assert "needs a name" in answer.get_data(as_text=True)


def test_rename_revoke_and_chime(app, client, coordinator, world):
    device, cookie = world.kiosk("Front desk")
    tablet = app.test_client()
    tablet.set_cookie(kiosks.COOKIE_NAME, cookie, path="/kiosk")
    assert 'data-chime="0"' in tablet.get("/kiosk/").get_data(as_text=True)
    token = form_token(client.get("/coordinator/kiosks").get_data(as_text=True))
    base = f"/coordinator/kiosks/{device.public_id}"
    client.post(f"{base}/rename", data={"name": "Lobby", "csrf_token": token})
    client.post(f"{base}/chime", data={"chime": "on", "csrf_token": token})
    assert 'data-chime="1"' in tablet.get("/kiosk/").get_data(as_text=True)
    page = client.get("/coordinator/kiosks").get_data(as_text=True)
    assert 'value="Lobby"' in page and "Turn chime off" in page
    answer = client.post(f"{base}/revoke", data={"csrf_token": token}, follow_redirects=True)
    assert "revoked" in answer.get_data(as_text=True)
    assert "scan-input" not in tablet.get("/kiosk/").get_data(as_text=True)
    with app.app_context():
        events = db.session().scalars(select(AuditEvent).where(AuditEvent.action.like("kiosk.%"))).all()
    by_action = {e.action: e for e in events}
    assert {"kiosk.rename", "kiosk.chime", "kiosk.revoke"} <= set(by_action)
    assert by_action["kiosk.revoke"].username == "casey"
    assert client.post("/coordinator/kiosks/nope/revoke", data={"csrf_token": token}).status_code == 404


def test_the_kiosk_page_shows_last_activity(app, client, coordinator, world, freeze):
    from datetime import date

    from helpers.world import local

    freeze(local(date(2026, 3, 2), 9, 41))
    world.kiosk("Front desk")
    assert "Mon 02 Mar 09:41" in client.get("/coordinator/kiosks").get_data(as_text=True)


def test_print_cards_for_chosen_clients(app, client, coordinator, world, tmp_path):
    maria = world.client("C1", "Maria", "Gonzalez")
    world.client("C2", "James", "Whitfield")
    world.client("C3", "Pat", "Lee", status="discharged")
    page = client.get("/coordinator/cards").get_data(as_text=True)
    assert "Maria Gonzalez" in page and "James Whitfield" in page and "Pat Lee" not in page
    answer = client.post("/coordinator/cards/print", data={"client_id": ["C1"], "csrf_token": form_token(page)})
    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    pdf = tmp_path / "chosen.pdf"
    pdf.write_bytes(answer.data)
    from helpers.printed_cards import decode_pdf

    with app.app_context():
        assert decode_pdf(pdf) == [cards.card_code(maria.id, 1)]
    everyone = client.post("/coordinator/cards/print", data={"csrf_token": form_token(page)})
    pdf.write_bytes(everyone.data)
    for old in tmp_path.glob("chosen-*.png"):
        old.unlink()
    assert len(decode_pdf(pdf)) == 2
    refused = client.post("/coordinator/cards/print", data={"client_id": ["C3"], "csrf_token": form_token(page)},
                          follow_redirects=True)
    assert "not active" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session().scalar(select(AuditEvent).where(AuditEvent.action == "cards.print")).username == "casey"


def test_issue_a_new_card_revokes_the_old(app, client, coordinator, world):
    maria = world.client("C1", "Maria", "Gonzalez")
    page = client.get("/coordinator/cards").get_data(as_text=True)
    answer = client.post(f"/coordinator/cards/{maria.public_id}/reissue", data={"csrf_token": form_token(page)},
                         follow_redirects=True)
    assert "Maria G. has a new card (card 2)" in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session().get(Client, maria.id).card_version == 2
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "card.reissue"))
    assert event.username == "casey" and event.target == f"client:{maria.public_id}"
    assert client.post("/coordinator/cards/nope/reissue", data={"csrf_token": form_token(page)}).status_code == 404


def test_forms_need_the_csrf_token(client, coordinator, world):
    maria = world.client("C1", "Maria", "Gonzalez")
    assert client.post("/coordinator/kiosks", data={"name": "X"}).status_code == 400
    assert client.post(f"/coordinator/cards/{maria.public_id}/reissue").status_code == 400
    assert client.post("/coordinator/cards/print").status_code == 400



def test_setting_up_a_tablet_while_signed_in_on_it_signs_staff_out(app, client, coordinator):
    """The coordinator made the link on the tablet itself: the public screen keeps no staff sign-in."""
    page = client.get("/coordinator/kiosks").get_data(as_text=True)
    made = client.post("/coordinator/kiosks", data={"name": "Front desk", "csrf_token": form_token(page)})
    link = re.search(r'<code class="setup-link">http://localhost(/kiosk/enroll/[^<]+)</code>',
                     made.get_data(as_text=True)).group(1)
    confirm = client.get(link).get_data(as_text=True)
    client.post(link, data={"csrf_token": form_token(confirm)})
    kiosk_page = client.get("/kiosk/").get_data(as_text=True)
    assert 'id="scan-input"' in kiosk_page and "idle.js" not in kiosk_page and "Sign out" not in kiosk_page
    assert client.get("/coordinator/kiosks").status_code == 302  # signed out


# ---- links that can work, from how the server listens ----------------------------------------------

def make_link(client, **headers) -> str:
    page = client.get("/coordinator/kiosks", headers=headers).get_data(as_text=True)
    return client.post("/coordinator/kiosks", data={"name": "Front desk", "csrf_token": form_token(page)},
                       headers=headers).get_data(as_text=True)


def test_on_loopback_only_the_page_says_why_tablets_cannot_reach_it_and_offers_no_tablet_link(app, client,
                                                                                             coordinator):
    from iop.ops.serving import Reach

    app.config["SERVE_REACH"] = Reach("127.0.0.1", 5000, https=False)  # `iop serve` as the README starts it
    page = client.get("/coordinator/kiosks").get_data(as_text=True)
    assert "Tablets cannot reach this server yet" in page and "iop serve --host 0.0.0.0" in page
    html = make_link(client)
    assert re.findall(r'<code class="setup-link">([^<]+)</code>', html) == [
        re.search(r"(http://localhost/kiosk/enroll/[^<]+)</code>", html).group(1)]
    assert "this computer's browser" in html and '<div class="setup-qr">' not in html


def test_on_the_network_the_link_uses_each_lan_address_with_a_qr_code(app, client, coordinator, monkeypatch):
    from iop.ops import serving

    monkeypatch.setattr(serving, "lan_addresses", lambda: ["192.168.1.20", "10.0.0.5"])
    app.config["SERVE_REACH"] = serving.Reach("0.0.0.0", 5000, https=True)
    page = client.get("/coordinator/kiosks").get_data(as_text=True)
    assert "cannot reach" not in page
    links = re.findall(r'<code class="setup-link">([^<]+)</code>', make_link(client))
    assert [link.split("/kiosk/enroll/")[0] for link in links] == ["https://192.168.1.20:5000", "https://10.0.0.5:5000"]
    monkeypatch.setattr(serving, "lan_addresses", lambda: [])
    html = make_link(client)
    assert "this computer has no network address" in html and '<div class="setup-qr">' not in html


def test_behind_another_server_a_page_opened_on_this_computer_says_so(client, coordinator):
    html = make_link(client)  # the test client's address is localhost, and no `iop serve` reach is known
    assert "only this computer can open" in html and '<div class="setup-qr">' not in html


def test_behind_a_proxy_the_link_is_the_address_the_coordinator_used():
    from iop.ops.serving import Reach, tablet_links

    assert tablet_links(None, "https://iop.clinic.example").bases == ["https://iop.clinic.example"]
    assert tablet_links(None, "http://127.0.0.1:8001").why_none == "opened_on_this_computer"
    assert tablet_links(Reach("::1", 5000, False), "http://[::1]:5000").why_none == "this_computer_only"
    assert tablet_links(Reach("192.168.1.20", 5000, False), "http://192.168.1.20:5000").bases == [
        "http://192.168.1.20:5000"]
