"""The coordinator's Clients page in pages of 100 (a large program's list is never one huge page):
page links that keep the status filter, every page audited as a view of a list of names, and the
links usable with a keyboard and a screen reader (axe on the last page a browser test leaves).
Its speed on 5,000 clients is bench/bench_client_list.py's."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from helpers.web import browser_sign_in
from iop.store import db
from iop.store.models import AuditEvent, Client

PAGE = 100


def many_clients(app, count: int, discharged_every: int = 0) -> None:
    """`count` clients C0001.. (every `discharged_every`-th discharged), in one transaction."""
    with app.app_context(), db.transaction() as s:
        s.add_all(Client(client_id=f"C{n:04}", first_name=f"Name{n}", last_name="Lopez",
                         status="discharged" if discharged_every and n % discharged_every == 0 else "active")
                  for n in range(1, count + 1))


def ids_on(html: str) -> list[str]:
    return re.findall(r'<td data-label="Client ID">([^<]+)</td>', html)


def page_links(html: str) -> list[str]:
    nav = re.search(r'<nav class="pages[^"]*" aria-label="Pages of clients">(.*?)</nav>', html, re.S)
    assert nav, "no page links"
    return [link.replace("&amp;", "&") for link in re.findall(r'href="([^"]+)"', nav.group(1))]


@pytest.fixture
def desk(client, auth):
    auth.login(username="cora", role="coordinator")
    return client


def test_a_long_list_comes_in_pages_with_links_to_the_others(app, desk):
    many_clients(app, 250)
    first = desk.get("/coordinator/clients").get_data(as_text=True)
    assert ids_on(first) == [f"C{n:04}" for n in range(1, 101)]
    assert "Clients 1–100 of 250, by client ID (page 1 of 3)." in first
    assert page_links(first) == ["/coordinator/clients?page=1&status=active",
                                 "/coordinator/clients?page=2&status=active",
                                 "/coordinator/clients?page=3&status=active",
                                 "/coordinator/clients?page=2&status=active"]  # 1 2 3, Next
    assert 'aria-current="page" href="/coordinator/clients?page=1&amp;status=active"' in first
    last = desk.get("/coordinator/clients?page=3").get_data(as_text=True)
    assert ids_on(last) == [f"C{n:04}" for n in range(201, 251)]
    assert "Clients 201–250 of 250" in last and 'rel="next"' not in last and 'rel="prev"' in last


def test_the_status_filter_holds_across_pages(app, desk):
    many_clients(app, 450, discharged_every=2)  # 225 discharged: three pages of them
    html = desk.get("/coordinator/clients?status=discharged&page=2").get_data(as_text=True)
    assert ids_on(html) == [f"C{n:04}" for n in range(202, 401, 2)]
    assert all("status=discharged" in link for link in page_links(html))
    assert "of 225" in html
    everyone = desk.get("/coordinator/clients?status=all&page=5").get_data(as_text=True)
    assert ids_on(everyone) == [f"C{n:04}" for n in range(401, 451)]


@pytest.mark.parametrize("asked, shown", [("0", 1), ("-3", 1), ("abc", 1), ("99", 3), ("3", 3)])
def test_a_page_out_of_range_shows_the_nearest_page(app, desk, asked, shown):
    many_clients(app, 250)
    html = desk.get(f"/coordinator/clients?page={asked}").get_data(as_text=True)
    assert f"(page {shown} of 3)" in html


def test_a_short_list_has_no_page_links(app, desk):
    many_clients(app, 3)
    html = desk.get("/coordinator/clients").get_data(as_text=True)
    assert ids_on(html) == ["C0001", "C0002", "C0003"] and "3 clients." in html
    assert "Pages of clients" not in html


def test_each_page_viewed_is_audited(app, desk):
    many_clients(app, 150)
    desk.get("/coordinator/clients?page=2&status=all")
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "clients.view"))
    assert event.target == "clients"
    assert event.detail == {"status": "all", "page": 2, "rows": 50}


@pytest.mark.browser
def test_the_page_links_work_from_the_keyboard(app, auth, live_server, page):
    many_clients(app, 230)
    auth.make_user("cora", "coordinator", "a long password")
    browser_sign_in(page, live_server.url, "cora", "a long password")
    page.goto(live_server.url + "/coordinator/clients")
    pages = page.get_by_role("navigation", name="Pages of clients")
    next_link = pages.get_by_role("link", name="Next page")
    next_link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/coordinator/clients?page=2*")
    assert page.locator('td[data-label="Client ID"]').first.inner_text() == "C0101"
    current = page.get_by_role("navigation", name="Pages of clients").get_by_role("link", name="Page 2")
    assert current.get_attribute("aria-current") == "page"
    page.get_by_role("link", name="Page 3").click()
    page.wait_for_url("**/coordinator/clients?page=3*")
    assert page.locator('td[data-label="Client ID"]').all_inner_texts() == [f"C{n:04}" for n in range(201, 231)]
    # the page fixture checks this last page with axe


def test_many_pages_show_the_first_the_last_and_the_ones_around(app, desk):
    many_clients(app, 1100)  # eleven pages
    html = desk.get("/coordinator/clients?page=6").get_data(as_text=True)
    nav = re.search(r'aria-label="Pages of clients">(.*?)</nav>', html, re.S).group(1)
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", nav.replace('<span class="visually-hidden">Page </span>', "")))
    assert words.split() == ["Previous", "page", "1", "…", "4", "5", "6", "7", "8", "…", "11", "Next", "page"]


def test_the_cards_page_lists_active_clients_in_pages_and_prints_the_ticked_ones(app, desk, auth):
    many_clients(app, 230, discharged_every=10)  # 207 active: three pages
    first = desk.get("/coordinator/cards").get_data(as_text=True)
    assert "Active clients 1–100 of 207, by last name (page 1 of 3)." in first
    assert first.count('name="client_id"') == 100
    links = [link.replace("&amp;", "&") for link in re.findall(
        r'href="([^"]+)"', re.search(r'aria-label="Pages of clients">(.*?)</nav>', first, re.S).group(1))]
    assert links == ["/coordinator/cards?page=1", "/coordinator/cards?page=2", "/coordinator/cards?page=3",
                     "/coordinator/cards?page=2"]
    last = desk.get("/coordinator/cards?page=3").get_data(as_text=True)
    assert last.count('name="client_id"') == 7 and "C0010" not in last  # discharged ones have no card
    ticked = re.findall(r'name="client_id" value="([^"]+)"', last)[:2]
    response = desk.post("/coordinator/cards/print",
                         data={"client_id": ticked, "csrf_token": auth.csrf("/coordinator/cards")})
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    with app.app_context():
        views = [e.detail for e in db.session().scalars(select(AuditEvent).where(AuditEvent.action == "cards.view")
                                                         .order_by(AuditEvent.id))]
        printed = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "cards.print"))
    assert views[:2] == [{"rows": 100, "page": 1}, {"rows": 7, "page": 3}]
    assert printed.detail["count"] == 2
