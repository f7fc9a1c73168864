"""`iop serve` as a clinic runs it on its one machine: what it prints, how tablets reach it, and the
Kiosks page's setup links, which must work where they are offered (a real process, a real browser)."""
from __future__ import annotations

import re
import signal
import time

import pytest
import requests

from helpers import servers
from iop.ops import serving

pytestmark = pytest.mark.slow

ALARMS = ("development server", "production deployment", "WARNING", "Traceback", "Do not use")


class Serve(servers.Process):
    """`iop serve --demo` with the given --host, on a free port; its output is the log."""

    def __init__(self, tmp_path, host: str):
        self.port = servers.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = servers.environment(tmp_path / "instance", f"sqlite:///{tmp_path / 'instance' / 'iop.sqlite3'}")
        super().__init__(f"serve-{self.port}", [str(servers.BIN / "iop"), "serve", "--demo", "--host", host,
                                                "--port", str(self.port)], env, tmp_path)

    def started(self) -> str:
        """Start, wait for "Press Ctrl+C to stop." and an answer from /healthz; the output so far."""
        self.start_listening(self.port, timeout=60)
        deadline = time.monotonic() + 30
        while "Press Ctrl+C to stop." not in self.log():
            assert time.monotonic() < deadline and self.alive(), self.log()
            time.sleep(0.1)
        assert requests.get(self.url + "/healthz", timeout=10).status_code == 200
        return self.log()


def demo_coordinator(page, base: str) -> None:
    from helpers.web import browser_sign_in

    browser_sign_in(page, base, "coordinator", "demo-plans-and-hours")


def test_on_this_computer_only_it_says_how_tablets_get_in_and_offers_no_link_that_cannot_work(tmp_path, page):
    server = Serve(tmp_path, "127.0.0.1")
    try:
        printed = server.started()
        for alarm in ALARMS:
            assert alarm not in printed, printed
        assert f"Kiosk:             http://127.0.0.1:{server.port}/kiosk/" in printed
        assert "only this computer can open" in printed and "--host 0.0.0.0" in printed
        assert "in this computer's browser (tablets need --host 0.0.0.0)" in printed  # the demo's setup link

        demo_coordinator(page, server.url)
        page.goto(server.url + "/coordinator/kiosks")
        assert "Tablets cannot reach this server yet" in page.locator("#tablet-reach").inner_text()
        page.get_by_label("Kiosk name").fill("Front desk")
        page.get_by_role("button", name="Create setup link").click()
        made = page.locator("#new-link")
        text = made.inner_text()
        assert "iop serve --host 0.0.0.0" in text
        links = made.locator("code.setup-link").all_inner_texts()
        assert len(links) == 1 and links[0].startswith(f"http://127.0.0.1:{server.port}/kiosk/enroll/")
        assert made.locator("svg").count() == 0  # no QR code for a tablet's camera: it could not open it
        assert not re.search(r"http://(?!127\.)\d+\.\d+\.\d+\.\d+", text)
        # The one link offered works, in this computer's browser.
        page.goto(links[0])
        page.get_by_role("button", name="Set up this tablet").click()
        page.wait_for_url("**/kiosk/")
        from helpers.a11y import assert_accessible

        assert_accessible(page)
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_on_the_network_it_prints_the_address_tablets_open_and_the_kiosks_page_offers_it(tmp_path, page):
    lan = serving.lan_addresses()
    if not lan:
        pytest.skip("this machine has no network address")
    server = Serve(tmp_path, "0.0.0.0")
    try:
        printed = server.started()
        for alarm in ALARMS:
            assert alarm not in printed, printed
        for address in lan:
            assert f"http://{address}:{server.port}/kiosk/" in printed
        assert "Anyone on this network can open these pages" in printed
        assert "camera needs https" in printed
        assert f"http://{lan[0]}:{server.port}/kiosk/enroll/" in printed  # the demo's link is the tablet's

        demo_coordinator(page, server.url)  # on the server's own screen, by 127.0.0.1
        page.goto(server.url + "/coordinator/kiosks")
        assert page.locator("#tablet-reach").count() == 0
        page.get_by_label("Kiosk name").fill("Front desk")
        page.get_by_role("button", name="Create setup link").click()
        made = page.locator("#new-link")
        links = made.locator("code.setup-link").all_inner_texts()
        assert [link.split("/kiosk/")[0] for link in links] == [f"http://{a}:{server.port}" for a in lan]
        assert made.locator(".setup-qr svg").count() == 1
        assert "cannot" not in made.inner_text()
    finally:
        server.proc.send_signal(signal.SIGINT)  # Ctrl+C
        server.proc.wait(20)
    assert "Traceback" not in server.log()


def test_a_port_in_use_is_one_line_for_the_person(tmp_path):
    server = Serve(tmp_path, "127.0.0.1")
    try:
        server.started()
        second = servers.iop(server.env, "init")  # the database is fine; only the port is taken
        assert second is not None
        import subprocess

        done = subprocess.run([str(servers.BIN / "iop"), "serve", "--port", str(server.port)], env=server.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert done.stderr.strip() == (f"Error: Cannot start: port {server.port} is already in use (is IOP Kiosk "
                                       "already running?); stop it or choose another --port.")
    finally:
        server.stop()
