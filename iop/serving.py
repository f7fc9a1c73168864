"""How `iop serve` listens: addresses to print, and TLS for tablet cameras."""
from __future__ import annotations

from pathlib import Path

from flask import Flask


def base_url(host: str, port: int, https: bool = False) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"{'https' if https else 'http'}://{shown}:{port}"


def where_to_go(base: str) -> str:
    return "\n".join([
        "IOP Kiosk is running.",
        f"  Kiosk (tablet):      {base}/kiosk/",
        f"  Facilitator:         {base}/facilitator/",
        f"  Coordinator:         {base}/coordinator/",
        f"  Staff sign-in:       {base}/login",
        "Press Ctrl+C to stop.",
    ])


def ssl_context(app: Flask, cert: str | None, key: str | None) -> tuple[str, str]:
    """The named certificate, or one made once in the instance folder."""
    if cert or key:
        if not (cert and key):
            from iop.cli import UserError

            raise UserError("--cert and --key go together.")
        for path in (cert, key):
            if not Path(path).is_file():
                from iop.cli import UserError

                raise UserError(f"{path} is not a file.")
        return cert, key
    from werkzeug.serving import make_ssl_devcert

    base = Path(app.instance_path) / "tls"
    if not (base.with_suffix(".crt").exists() and base.with_suffix(".key").exists()):
        make_ssl_devcert(str(base), host="iop-kiosk.local")
        base.with_suffix(".key").chmod(0o600)
    return str(base.with_suffix(".crt")), str(base.with_suffix(".key"))
