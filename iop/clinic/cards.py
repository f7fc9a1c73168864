"""QR cards: an opaque signed token with the client's internal id and the card's version.

The payload carries no name and no program wording; a reissued card bumps the version, which
revokes every older card. Old secret keys stay valid for verification (IOP_SECRET_KEY_FALLBACKS).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from iop.config import signing_keys

SALT = "iop.card.v1"


class CardError(ValueError):
    """A card problem; `code` is the kiosk API's stable error code where one applies."""

    def __init__(self, message: str, code: str = "unknown_card"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CardToken:
    client_key: int
    version: int


def _serializer() -> URLSafeSerializer:
    """The app's card serializer (made once: its keys are read at start, and every scan reads a card)."""
    extensions = current_app.extensions
    found = extensions.get("iop.card_serializer")
    if found is None:
        found = extensions.setdefault("iop.card_serializer",
                                      URLSafeSerializer(signing_keys(current_app.config), salt=SALT))
    return found


def card_code(client_key: int, version: int) -> str:
    """The QR payload of a client's card."""
    return _serializer().dumps([client_key, version])


def read_card(code: str) -> CardToken:
    """The token inside a payload; CardError('unknown_card') when forged, foreign or malformed."""
    if not isinstance(code, str) or not code or len(code) > 200:
        raise CardError("unknown card", "unknown_card")
    try:
        value = _serializer().loads(code.strip())
    except (BadSignature, ValueError, TypeError):
        raise CardError("unknown card", "unknown_card") from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(part, int) and not isinstance(part, bool) and part > 0 for part in value)
    ):
        raise CardError("unknown card", "unknown_card")
    return CardToken(client_key=value[0], version=value[1])


def issue_new_card(client, by_user=None) -> str:
    """A new card for `client`: the version goes up, so every older card is revoked (the caller commits)."""
    from iop.clinic import audit

    client.card_version += 1
    audit.record("card.reissue", target=f"client:{client.public_id}", user=by_user, version=client.card_version)
    return card_code(client.id, client.card_version)


def current_codes(client_ids: list[str], reissue: bool = False) -> list[str]:
    """Each named client's current card payload, in the order named; reissue revokes old cards first."""
    from iop.store import db

    client_ids = _typed_ids(client_ids)
    with db.transaction():
        found = _clients_named(client_ids)
        codes = []
        for client_id in client_ids:
            client = found[client_id]
            codes.append(issue_new_card(client) if reissue else card_code(client.id, client.card_version))
    return codes


def _typed_ids(client_ids: list[str]) -> list[str]:
    """Client ids as typed (a command's arguments, a form's boxes), read by iop.rules.entry."""
    from iop.rules import entry

    try:
        return [entry.client_id(client_id) for client_id in client_ids]
    except entry.EntryError as exc:
        raise CardError(exc.message) from None


def _clients_named(client_ids: list[str]) -> dict:
    from sqlalchemy import select

    from iop.store import db
    from iop.store.models import Client

    found = {c.client_id: c for c in db.session().scalars(select(Client).where(Client.client_id.in_(client_ids)))}
    missing = [client_id for client_id in client_ids if client_id not in found]
    if missing:
        raise CardError(f"No client with id {missing[0]}.")
    return found


def clients_for_cards(client_ids: list[str]) -> list:
    """The named clients (in the order named), or every active client when none are named.

    A discharged client's card would not work at the kiosk, so naming one is an error."""
    from sqlalchemy import select

    from iop.store import db
    from iop.store.models import Client

    client_ids = _typed_ids(client_ids)
    if not client_ids:
        return list(db.session().scalars(
            select(Client).where(Client.status == "active").order_by(Client.last_name, Client.first_name,
                                                                     Client.client_id)))
    found = _clients_named(list(dict.fromkeys(client_ids)))
    inactive = [client_id for client_id in found if found[client_id].status != "active"]
    if inactive:
        raise CardError(f"Client {inactive[0]} is not active; a card would not work at the kiosk.")
    return [found[client_id] for client_id in dict.fromkeys(client_ids)]


def active_clients_page(number: int, size: int):
    """Page `number` (from 1) of the active clients, by name, as the cards page lists them."""
    from sqlalchemy import select

    from iop.clinic import program
    from iop.store.models import Client

    return program.page_of(select(Client).where(Client.status == "active").order_by(
        Client.last_name, Client.first_name, Client.client_id, Client.id), number, size)


# ---- printable cards -------------------------------------------------------------------------
# Wallet size (ISO/IEC 7810 ID-1), two columns of five on a Letter page. Rows touch so one cut
# separates them; the columns have a gutter. Nothing on a card names the program or treatment
# (42 CFR 2.18): a QR code, the first name and last initial, and a neutral line.

CARD_W_MM, CARD_H_MM = 85.6, 54.0
COLUMNS, ROWS, GUTTER_MM = 2, 5, 8.0
CARD_LINE = "Please bring this card each visit."
CARD_LINE_ES = "Traiga esta tarjeta en cada visita."


def _fonts() -> tuple[str, str]:
    """DejaVu when the system has it (names with any Latin accents and beyond), else Helvetica."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    base = Path("/usr/share/fonts/truetype/dejavu")
    regular, bold = base / "DejaVuSans.ttf", base / "DejaVuSans-Bold.ttf"
    if regular.is_file() and bold.is_file():
        if "IOPSans" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont("IOPSans", str(regular)))
            pdfmetrics.registerFont(TTFont("IOPSans-Bold", str(bold)))
        return "IOPSans", "IOPSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def _qr_matrix(code: str) -> list[list[bool]]:
    """The QR modules of a payload, quiet zone (4 modules) included; error correction Q survives wear."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_Q

    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, border=4, box_size=1)
    qr.add_data(code)
    qr.make(fit=True)
    return qr.get_matrix()


def _draw_qr(canvas, code: str, x: float, y: float, size: float) -> None:
    """Vector modules (sharp at any printer resolution), one rectangle per dark run of a row."""
    matrix = _qr_matrix(code)
    n = len(matrix)
    module = size / n
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x, y, size, size, stroke=0, fill=1)
    canvas.setFillColorRGB(0, 0, 0)
    for row_index, row in enumerate(matrix):
        top = y + size - (row_index + 1) * module
        col = 0
        while col < n:
            if row[col]:
                start = col
                while col < n and row[col]:
                    col += 1
                canvas.rect(x + start * module, top, (col - start) * module, module, stroke=0, fill=1)
            else:
                col += 1


def _fit_font_size(text: str, font: str, largest: float, width: float) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    size = largest
    while size > 8 and stringWidth(text, font, size) > width:
        size -= 0.5
    return size


def _draw_card(canvas, client, code: str, x: float, y: float, fonts: tuple[str, str]) -> None:
    from reportlab.lib.units import mm

    regular, bold = fonts
    w, h = CARD_W_MM * mm, CARD_H_MM * mm
    canvas.setStrokeGray(0.85)  # a faint outline helps scissors; the cut marks guide a guillotine
    canvas.setLineWidth(0.3)
    canvas.rect(x, y, w, h, stroke=1, fill=0)
    qr_size = h - 8 * mm
    _draw_qr(canvas, code, x + 3 * mm, y + 4 * mm, qr_size)
    text_x = x + 3 * mm + qr_size + 3 * mm
    text_w = x + w - 4 * mm - text_x
    name = client.display_name
    size = _fit_font_size(name, bold, 17, text_w)
    canvas.setFillGray(0)
    canvas.setFont(bold, size)
    canvas.drawString(text_x, y + h - 16 * mm, name)
    canvas.setFont(regular, 8)
    canvas.setFillGray(0.2)
    line_y = y + h - 24 * mm
    for line in _wrap(CARD_LINE, regular, 8, text_w) + [""] + _wrap(CARD_LINE_ES, regular, 8, text_w):
        canvas.drawString(text_x, line_y, line)
        line_y -= 3.6 * mm
    canvas.setFont(regular, 6.5)
    canvas.setFillGray(0.45)
    canvas.drawRightString(x + w - 4 * mm, y + 4 * mm, f"Card {client.card_version}")


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and stringWidth(trial, font, size) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def _draw_cut_marks(canvas, left: float, bottom: float, rows: int) -> None:
    """Short marks outside the cards on every cut line: in the side margins, the gutter, top and bottom."""
    from reportlab.lib.units import mm

    w, h, gutter = CARD_W_MM * mm, CARD_H_MM * mm, GUTTER_MM * mm
    gap, length = 1 * mm, 3 * mm
    right = left + COLUMNS * w + (COLUMNS - 1) * gutter
    top = bottom + rows * h
    canvas.setStrokeGray(0)
    canvas.setLineWidth(0.4)
    for row in range(rows + 1):
        y = bottom + row * h
        canvas.line(left - gap - length, y, left - gap, y)
        canvas.line(right + gap, y, right + gap + length, y)
        for column in range(COLUMNS - 1):
            gutter_left = left + (column + 1) * w + column * gutter
            canvas.line(gutter_left + gap, y, gutter_left + gutter - gap, y)
    for column in range(COLUMNS):
        for x in (left + column * (w + gutter), left + column * (w + gutter) + w):
            canvas.line(x, top + gap, x, top + gap + length)
            canvas.line(x, bottom - gap, x, bottom - gap - length)


def cards_pdf(cards: list[tuple[object, str]]) -> bytes:
    """A Letter PDF of wallet-size cards, ten a page: `cards` is [(client, payload)]."""
    import io

    from reportlab.lib.pagesizes import letter
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=letter, pageCompression=1)
    canvas.setTitle("Cards")
    canvas.setAuthor("")
    canvas.setSubject("")
    canvas.setCreator("")
    fonts = _fonts()
    page_w, page_h = letter
    w, h, gutter = CARD_W_MM * mm, CARD_H_MM * mm, GUTTER_MM * mm
    left = (page_w - (COLUMNS * w + (COLUMNS - 1) * gutter)) / 2
    per_page = COLUMNS * ROWS
    for first in range(0, len(cards), per_page):
        batch = cards[first:first + per_page]
        rows = -(-len(batch) // COLUMNS)
        top = page_h - (page_h - ROWS * h) / 2
        for index, (client, code) in enumerate(batch):
            row, column = divmod(index, COLUMNS)
            _draw_card(canvas, client, code, left + column * (w + gutter), top - (row + 1) * h, fonts)
        _draw_cut_marks(canvas, left, top - rows * h, rows)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def cards_to_print(client_ids: list[str]) -> tuple[list, bytes]:
    """The named clients (every active client when none are named) and a PDF of their current cards."""
    clients = clients_for_cards(list(client_ids))
    if not clients:
        raise CardError("There are no active clients to print cards for.")
    return clients, cards_pdf([(client, card_code(client.id, client.card_version)) for client in clients])


def record_printed(clients: list, by_user=None) -> None:
    """The audit log's line for printed cards (by opaque ids, at most 200 named)."""
    from iop.clinic import audit
    from iop.store import db

    with db.transaction():
        audit.record("cards.print", target="cards", user=by_user, count=len(clients),
                     clients=[f"client:{client.public_id}" for client in clients][:200])


def record_listed(clients: list, by_user=None, **detail) -> None:
    """The audit log's line for the cards page: a list of names was shown (`detail`: which page)."""
    from iop.clinic import audit
    from iop.store import db

    with db.transaction():
        audit.record("cards.view", target="cards", user=by_user, rows=len(clients), **detail)


def write_cards_pdf(client_ids: list[str], output) -> int:
    """`iop cards`: the named clients' current cards (all active clients when none) into `output`."""
    clients, data = cards_to_print(client_ids)
    from iop.config import replacing

    try:
        with replacing(Path(output)) as partial:
            partial.write_bytes(data)
    except OSError as exc:
        raise CardError(f"Cannot write {output}: {exc.strerror}.") from None
    record_printed(clients)
    return len(clients)


def reissue_for(public_id: str, by_user=None):
    """A lost card: the active client with this page id gets a new one (the old one stops working at
    once); None when there is no such active client. The caller commits."""
    from sqlalchemy import select

    from iop.store import db
    from iop.store.models import Client

    client = db.session().scalar(select(Client).where(Client.public_id == public_id))
    if client is None or client.status != "active":
        return None
    issue_new_card(client, by_user)
    return client
