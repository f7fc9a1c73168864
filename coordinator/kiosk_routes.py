"""Coordinators' kiosk tablets and QR cards: thin views over iop.kiosks and iop.cards."""
from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from coordinator import bp
from iop import clock
from iop.clinic import audit, cards, kiosks
from iop.store import db
from iop.store.models import Client
from iop.web.auth import current_user, staff_required


def _link_qr_svg(link: str) -> str:
    """The enrollment link as an inline SVG QR code, so a tablet's camera can open it."""
    import qrcode
    import qrcode.image.svg
    from qrcode.constants import ERROR_CORRECT_M

    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4, image_factory=qrcode.image.svg.SvgPathImage)
    qr.add_data(link)
    qr.make(fit=True)
    return qr.make_image().to_string(encoding="unicode")


def _tablet_links():
    """Links a tablet can open (never one that cannot work), from how this server listens."""
    from iop.ops import serving

    return serving.tablet_links(current_app.config.get("SERVE_REACH"), request.host_url.rstrip("/"))


@bp.route("/kiosks", methods=["GET"])
@staff_required("coordinator")
def kiosks_page():
    return render_template("coordinator/kiosks.html", devices=kiosks.all_devices(), now=clock.now(), created=None,
                           reach=_tablet_links(), https=request.scheme == "https")


@bp.route("/kiosks", methods=["POST"])
@staff_required("coordinator")
def kiosk_create():
    """A one-time setup link, shown once on this page (with its QR code) and never listed again."""
    user = current_user()
    try:
        with db.transaction():
            device = kiosks.issue_enrollment(request.form.get("name", ""), created_by_id=user.id)
            path = kiosks.enrollment_path(device)
    except kiosks.KioskError as exc:
        flash(str(exc))
        return redirect(url_for("coordinator.kiosks_page"))
    reach = _tablet_links()
    links = [base + path for base in reach.bases]
    created = {"name": device.name, "links": links, "qr": _link_qr_svg(links[0]) if links else None,
               "here": request.host_url.rstrip("/") + path, "expires": device.enrollment_expires_at}
    response = Response(render_template("coordinator/kiosks.html", devices=kiosks.all_devices(), now=clock.now(),
                                        created=created, reach=reach, https=request.scheme == "https"))
    response.headers["Cache-Control"] = "no-store"  # the link is a secret until used
    return response


def _device_or_404(public_id: str):
    try:
        return kiosks.device_by_public_id(public_id)
    except kiosks.KioskError:
        abort(404)


@bp.route("/kiosks/<public_id>/rename", methods=["POST"])
@staff_required("coordinator")
def kiosk_rename(public_id: str):
    try:
        with db.transaction():
            device = kiosks.rename(_device_or_404(public_id), request.form.get("name", ""), current_user())
        flash(f"The kiosk is now called “{device.name}”.")
    except kiosks.KioskError as exc:
        flash(str(exc))
    return redirect(url_for("coordinator.kiosks_page"))


@bp.route("/kiosks/<public_id>/revoke", methods=["POST"])
@staff_required("coordinator")
def kiosk_revoke(public_id: str):
    with db.transaction():
        device = kiosks.revoke(_device_or_404(public_id), current_user())
    flash(f"Kiosk “{device.name}” is revoked: that tablet can no longer check anyone in.")
    return redirect(url_for("coordinator.kiosks_page"))


@bp.route("/kiosks/<public_id>/chime", methods=["POST"])
@staff_required("coordinator")
def kiosk_chime(public_id: str):
    with db.transaction():
        device = kiosks.set_chime(_device_or_404(public_id), request.form.get("chime") == "on", current_user())
    flash(f"Kiosk “{device.name}”: chime {'on' if device.chime else 'off'} (from its next page load).")
    return redirect(url_for("coordinator.kiosks_page"))


# ---- cards ---------------------------------------------------------------------------------------

@bp.route("/cards", methods=["GET"])
@staff_required("coordinator")
def cards_page():
    clients = db.session().scalars(select(Client).where(Client.status == "active")
                                   .order_by(Client.last_name, Client.first_name, Client.client_id)).all()
    return render_template("coordinator/cards.html", clients=clients)


@bp.route("/cards/print", methods=["POST"])
@staff_required("coordinator")
def cards_print():
    """A PDF of the chosen clients' current cards (all active clients when none are chosen)."""
    chosen = [value for value in request.form.getlist("client_id") if value][:2000]
    try:
        clients = cards.clients_for_cards(chosen)
    except cards.CardError as exc:
        flash(str(exc))
        return redirect(url_for("coordinator.cards_page"))
    if not clients:
        flash("There are no active clients to print cards for.")
        return redirect(url_for("coordinator.cards_page"))
    data = cards.cards_pdf([(client, cards.card_code(client.id, client.card_version)) for client in clients])
    with db.transaction():
        audit.record("cards.print", target="cards", count=len(clients),
                     clients=[f"client:{client.public_id}" for client in clients][:200])
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = 'attachment; filename="cards.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/cards/<public_id>/reissue", methods=["POST"])
@staff_required("coordinator")
def card_reissue(public_id: str):
    """A lost card: the client gets a new one, and the old one stops working at once."""
    with db.transaction() as db_session:
        client = db_session.scalar(select(Client).where(Client.public_id == public_id))
        if client is None or client.status != "active":
            abort(404)
        cards.issue_new_card(client, current_user())
    flash(f"{client.display_name} has a new card (card {client.card_version}); the old card no longer works. "
          "Print it below.")
    return redirect(url_for("coordinator.cards_page") + f"#client-{client.public_id}")
