"""Coordinators' kiosk tablets and QR cards: thin views over iop.clinic.kiosks and iop.clinic.cards."""
from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for

from coordinator import bp, forms
from iop import clock
from iop.clinic import cards, kiosks
from iop.store import db
from iop.web.auth import current_user, staff_required

CARDS_PAGE_SIZE = 100  # clients a page on the cards page (each row has its own form)


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
    form = forms.KioskNameForm()
    try:
        if not form.validate_on_submit():
            raise kiosks.KioskError(" ".join(form.problems))
        with db.transaction():
            device = kiosks.issue_enrollment(form.name.value, created_by_id=current_user().id)
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
    form = forms.KioskNameForm()
    try:
        if not form.validate_on_submit():
            raise kiosks.KioskError(" ".join(form.problems))
        with db.transaction():
            device = kiosks.rename(_device_or_404(public_id), form.name.value, current_user())
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
        device = kiosks.set_chime(_device_or_404(public_id), forms.ChimeForm().on, current_user())
    flash(f"Kiosk “{device.name}”: chime {'on' if device.chime else 'off'} (from its next page load).")
    return redirect(url_for("coordinator.kiosks_page"))


# ---- cards ---------------------------------------------------------------------------------------

@bp.route("/cards", methods=["GET"])
@staff_required("coordinator")
def cards_page():
    page = cards.active_clients_page(request.args.get("page", 1, type=int) or 1, CARDS_PAGE_SIZE)
    cards.record_listed(page.rows, current_user(), page=page.number)
    return render_template("coordinator/cards.html", clients=page.rows, page=page)


@bp.route("/cards/print", methods=["POST"])
@staff_required("coordinator")
def cards_print():
    """A PDF of the chosen clients' current cards (all active clients when none are chosen)."""
    try:
        clients, data = cards.cards_to_print(forms.CardsForm().chosen())
    except cards.CardError as exc:
        flash(str(exc))
        return redirect(url_for("coordinator.cards_page"))
    cards.record_printed(clients, current_user())
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = 'attachment; filename="cards.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/cards/<public_id>/reissue", methods=["POST"])
@staff_required("coordinator")
def card_reissue(public_id: str):
    """A lost card: the client gets a new one, and the old one stops working at once."""
    with db.transaction():
        client = cards.reissue_for(public_id, current_user())
    if client is None:
        abort(404)
    flash(f"{client.display_name} has a new card (card {client.card_version}); the old card no longer works. "
          "Print it below.")
    return redirect(url_for("coordinator.cards_page") + f"#client-{client.public_id}")
