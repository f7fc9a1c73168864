"""QR cards: an opaque signed token with the client's internal id and the card's version.

The payload carries no name and no program wording; a reissued card bumps the version, which
revokes every older card. Old secret keys stay valid for verification (IOP_SECRET_KEY_FALLBACKS).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from iop.config import signing_keys
from itsdangerous import BadSignature, URLSafeSerializer

SALT = "iop.card.v1"


class CardError(ValueError):
    """A card problem; `code` is the kiosk API's stable error code where one applies."""

    def __init__(self, message: str, code: str = "unknown_card"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CardToken:
    client_pk: int
    version: int


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(signing_keys(current_app.config), salt=SALT)


def card_code(client_pk: int, version: int) -> str:
    """The QR payload of a client's card."""
    return _serializer().dumps([client_pk, version])


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
    return CardToken(client_pk=value[0], version=value[1])


def current_codes(client_ids: list[str], reissue: bool = False) -> list[str]:
    """Each named client's current card payload, in the order named; reissue revokes old cards first."""
    from sqlalchemy import select

    from iop import audit, db
    from iop.models import Client

    with db.transaction() as db_session:
        found = {c.client_id: c for c in db_session.scalars(select(Client).where(Client.client_id.in_(client_ids)))}
        missing = [client_id for client_id in client_ids if client_id not in found]
        if missing:
            raise CardError(f"No client with id {missing[0]}.")
        codes = []
        for client_id in client_ids:
            client = found[client_id]
            if reissue:
                client.card_version += 1
                audit.record("card.reissue", target=f"client:{client.public_id}", version=client.card_version)
            codes.append(card_code(client.id, client.card_version))
    return codes


def write_cards_pdf(client_ids: list[str], output) -> int:
    """Printable wallet-size cards (filled by the kiosk work)."""
    raise CardError("Printing cards is not built yet.")
