"""QR cards: signed opaque tokens, reissue revokes, and printable PDFs an independent decoder can read."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from helpers.printed_cards import PDFTOTEXT, decode_pdf
from iop.clinic import cards
from iop.store import db
from iop.store.models import AuditEvent


def pages(pdf: Path) -> int:
    return len(list(pdf.parent.glob(pdf.with_suffix("").name + "-*.png")))


@pytest.fixture
def twelve_clients(world):
    group = world.group()
    return [world.client(f"C{n:02d}", first, chr(64 + n) + "orvath", groups=[group])
            for n, first in enumerate(["Maria", "James", "Aisha", "Tom", "Lucia", "Devon", "Grace", "Marcus",
                                       "Nina", "Sam", "Renée", "Eli"], start=1)]


def test_token_round_trip_and_nothing_readable_inside(ctx):
    code = cards.card_code(42, 3)
    assert cards.read_card(code) == cards.CardToken(42, 3)
    assert "42" not in code.split(".")[1]  # the signature part carries no id
    for bad in ("", "abc", code[:-1], code + "x", "x" * 500, None, 7):
        with pytest.raises(cards.CardError) as excinfo:
            cards.read_card(bad)
        assert excinfo.value.code == "unknown_card"


def test_printed_cards_decode_to_the_card_codes(app, runner, twelve_clients, tmp_path):
    out = tmp_path / "cards.pdf"
    result = runner.invoke(args=["cards", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote 12 card(s)" in result.output
    decoded = decode_pdf(out)
    codes = runner.invoke(args=["card-code", *[c.client_id for c in twelve_clients]]).output.split()
    assert len(codes) == 12
    assert sorted(decoded) == sorted(codes)
    assert pages(out) == 2  # ten wallet cards to a Letter page


def test_named_clients_only_and_the_card_says_nothing_about_the_program(app, runner, twelve_clients, tmp_path):
    out = tmp_path / "two.pdf"
    result = runner.invoke(args=["cards", "--client", "C03", "--client", "C11", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(decode_pdf(out)) == sorted(runner.invoke(args=["card-code", "C03", "C11"]).output.split())
    text = subprocess.run([PDFTOTEXT, str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert "Aisha C." in text and "Renée K." in text
    assert "Corvath" not in text and "Korvath" not in text  # first name and last initial only
    lowered = text.lower()
    for word in ("treatment", "recovery", "relapse", "program", "clinic", "substance", "iop", "group", "c03"):
        assert word not in lowered, word
    assert "bring this card" in " ".join(lowered.split())


def test_cards_are_wallet_size_with_cut_marks(app, runner, twelve_clients, tmp_path):
    """85.6 x 54 mm (ISO ID-1), read back from the PDF's own drawing commands: ten card outlines a page."""
    import base64
    import re
    import zlib

    out = tmp_path / "cards.pdf"
    runner.invoke(args=["cards", "-o", str(out)])
    raw = out.read_bytes()
    streams = []
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", raw, re.S):
        data = match.group(1).strip()
        if data.endswith(b"~>"):  # page content: ASCII85 around Flate
            data = base64.a85decode(data, adobe=True)
        try:
            streams.append(zlib.decompress(data))
        except zlib.error:
            pass
    drawing = b"\n".join(streams)
    mm = 72 / 25.4
    outlines = [(float(w), float(h)) for w, h in re.findall(rb"[-\d.]+ [-\d.]+ ([\d.]+) ([\d.]+) re", drawing)
                if abs(float(w) - 85.6 * mm) < 0.05 and abs(float(h) - 54 * mm) < 0.05]
    assert len(outlines) == 12
    assert drawing.count(b" l") >= 40  # cut marks: short lines outside the cards on every cut


def test_an_unknown_or_discharged_client_is_a_clear_error(app, runner, world, tmp_path):
    world.client("C1", "Maria", "Gonzalez")
    world.client("C2", "Pat", "Lee", status="discharged")
    out = tmp_path / "x.pdf"
    unknown = runner.invoke(args=["cards", "--client", "C1", "--client", "NOPE", "-o", str(out)])
    assert unknown.exit_code == 1 and "NOPE" in unknown.output and "Traceback" not in unknown.output
    assert not out.exists()
    gone = runner.invoke(args=["cards", "--client", "C2", "-o", str(out)])
    assert gone.exit_code == 1 and "not active" in gone.output
    missing = runner.invoke(args=["card-code", "C1", "NOPE"])
    assert missing.exit_code == 1 and "NOPE" in missing.output


def test_no_active_clients_is_a_clear_error(app, runner, tmp_path):
    result = runner.invoke(args=["cards", "-o", str(tmp_path / "x.pdf")])
    assert result.exit_code == 1 and "no active clients" in result.output


def test_an_unwritable_output_is_a_clear_error(app, runner, world, tmp_path):
    world.client("C1", "Maria", "Gonzalez")
    result = runner.invoke(args=["cards", "-o", str(tmp_path / "missing-folder" / "x.pdf")])
    assert result.exit_code == 1 and "Cannot write" in result.output


def test_card_code_order_and_reissue(app, runner, world):
    world.client("C1", "Maria", "Gonzalez")
    world.client("C2", "James", "Whitfield")
    first = runner.invoke(args=["card-code", "C2", "C1"]).output.split()
    again = runner.invoke(args=["card-code", "C2", "C1"]).output.split()
    assert first == again and first[0] != first[1]
    reissued = runner.invoke(args=["card-code", "C1", "--reissue"]).output.split()
    assert reissued[0] != first[1]
    with app.app_context():
        assert cards.read_card(reissued[0]).version == 2
        assert db.session().scalar(select(AuditEvent).where(AuditEvent.action == "card.reissue")) is not None
    assert runner.invoke(args=["card-code", "C1"]).output.split() == reissued


def test_printing_is_audited_without_names(app, runner, world, tmp_path):
    world.client("C1", "Maria", "Gonzalez")
    runner.invoke(args=["cards", "-o", str(tmp_path / "x.pdf")])
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "cards.print"))
    assert event.detail["count"] == 1 and "Maria" not in str(event.detail)
