"""How `iop serve` listens: the server, the addresses to print, and TLS for tablet cameras.

`iop serve` runs the same server as a deployment (deploy/): gunicorn with one gthread worker in
Flask-SocketIO's threading mode, WebSockets through simple-websocket. One process, so one clinic's
machine needs no proxy and no Redis; bigger programs move to deploy/'s several processes.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

ALL_ADDRESSES = ("0.0.0.0", "::", "")
DEFAULT_THREADS = 100  # one per connected screen (display, control page) plus the kiosks' requests


def is_loopback(host: str | None) -> bool:
    """True for an address only this computer can reach (127.x, ::1, localhost)."""
    if not host:
        return False
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def lan_addresses() -> list[str]:
    """This computer's IPv4 addresses on its networks, the route's address first (best effort; no
    traffic is sent). Empty when it is on no network."""
    found: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # a documentation address: picks the LAN route, sends nothing
            found.append(probe.getsockname()[0])
    except OSError:
        pass
    try:
        for *_rest, address in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(address[0])
    except OSError:
        pass
    lan = []
    for address in found:
        if address not in lan and not is_loopback(address) and not address.startswith(("0.", "169.254.")):
            lan.append(address)
    return lan


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def base_url(host: str, port: int, https: bool = False) -> str:
    """The address people on this computer open (the loopback one when listening everywhere)."""
    shown = "127.0.0.1" if host in ALL_ADDRESSES else host
    return f"{'https' if https else 'http'}://{url_host(shown)}:{port}"


@dataclass(frozen=True)
class Reach:
    """Who can open the server's pages, from how it listens."""

    host: str
    port: int
    https: bool

    @property
    def scheme(self) -> str:
        return "https" if self.https else "http"

    @property
    def this_computer_only(self) -> bool:
        return is_loopback(self.host)

    def tablet_bases(self) -> list[str]:
        """Addresses a tablet on the network opens (none when the server listens on loopback only)."""
        if self.this_computer_only:
            return []
        hosts = lan_addresses() if self.host in ALL_ADDRESSES else [self.host]
        return [f"{self.scheme}://{url_host(host)}:{self.port}" for host in hosts]

    def local_base(self) -> str:
        return base_url(self.host, self.port, self.https)


@dataclass(frozen=True)
class TabletLinks:
    """Where tablets open this server, as far as it knows; `why_none` says why there is no such address."""

    bases: list[str]
    why_none: str | None = None  # "this_computer_only", "no_network" or "opened_on_this_computer"


def tablet_links(reach: Reach | None, page_base: str) -> TabletLinks:
    """The bases of links that work on a tablet. `reach` is how `iop serve` listens (None under another
    server, e.g. gunicorn behind nginx: then the address this page was opened at is the service's)."""
    from urllib.parse import urlsplit

    if reach is None:
        if is_loopback(urlsplit(page_base).hostname):
            return TabletLinks([], "opened_on_this_computer")
        return TabletLinks([page_base])
    if reach.this_computer_only:
        return TabletLinks([], "this_computer_only")
    bases = reach.tablet_bases()
    if not is_loopback(urlsplit(page_base).hostname) and page_base not in bases:
        bases.insert(0, page_base)  # the name the coordinator used reaches this server from the network too
    return TabletLinks(bases, None if bases else "no_network")


def where_to_go(reach: Reach, threads: int = DEFAULT_THREADS) -> str:
    """What `iop serve` prints: where each face is, who can reach it, and how tablets connect."""
    local = reach.local_base()
    tablets = reach.tablet_bases()
    lines = [f"IOP Kiosk is running: one process, serving up to {threads} screens and kiosk requests at once.",
             "On this computer:",
             f"    Kiosk:             {local}/kiosk/",
             f"    Facilitator:       {local}/facilitator/",
             f"    Coordinator:       {local}/coordinator/"]
    if reach.this_computer_only:
        lines += ["",
                  f"Tablets: not yet. The server listens on {reach.host}, which only this computer can open.",
                  "  To check clients in on tablets, stop it (Ctrl+C) and start it again with --host 0.0.0.0."]
    elif tablets:
        lines += ["", "Tablets and other computers on this network open:"]
        lines += [f"    Kiosk:             {base}/kiosk/" for base in tablets]
        lines += ["  Set up each tablet once with a one-time link: Coordinator, then Kiosks.",
                  "  Anyone on this network can open these pages: staff pages ask for a sign-in, and only a",
                  "  tablet set up with a one-time link can check anyone in. Use the clinic's private",
                  "  network, not a guest or public Wi-Fi."]
    else:
        lines += ["", "Tablets: this computer has no network address right now. Connect it to the clinic's",
                  "  network, then start the server again; it will print the address tablets open."]
    if not reach.this_computer_only:
        if reach.https:
            lines.append(f"  Tablet certificate:  {(tablets or [local])[0]}/kiosk/tls-ca.crt "
                         "(trust it once on each tablet; README, HTTPS for cameras)")
        else:
            lines.append("  A tablet's camera needs https (add --https); a USB or Bluetooth scanner works as it is.")
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


def port_problem(host: str, port: int) -> str | None:
    """Why the server cannot listen there (in use, no such address), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as trial:
            trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            trial.bind((host or "0.0.0.0", port))
    except PermissionError:
        return f"this user may not listen on port {port}; choose --port 1024 or above."
    except OSError as exc:
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            return f"port {port} is already in use (is IOP Kiosk already running?); stop it or choose another --port."
        return f"cannot listen on {host} ({exc.strerror}); check --host."
    return None


def run(app: Flask, host: str, port: int, threads: int, ssl: tuple[str, str] | None, on_start) -> None:
    """Serve `app` with gunicorn (gthread, one worker) until Ctrl+C or SIGTERM.

    The worker is forked from this process: it drops the database connections it inherited and then
    calls `on_start` (the scheduler belongs in the process that serves)."""
    from gunicorn.app.base import BaseApplication

    from iop.store import db

    def post_fork(_server, _worker):
        db.database(app).engine.dispose(close=False)  # the parent's connections are not the worker's

    def post_worker_init(_worker):
        on_start()

    options = {
        "bind": [f"{url_host(host or '0.0.0.0')}:{port}"],
        "worker_class": "gthread", "workers": 1, "threads": threads,
        # A WebSocket is a long request; the worker's heartbeat is its main loop (deploy/gunicorn.conf.py).
        "timeout": 60, "graceful_timeout": 3, "keepalive": 5,
        "accesslog": None, "errorlog": "-", "loglevel": "warning", "proc_name": "iop serve",
        "post_fork": post_fork, "post_worker_init": post_worker_init,
    }
    if ssl:
        options.update(certfile=ssl[0], keyfile=ssl[1])

    class Server(BaseApplication):
        def load_config(self):
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self):
            return app

    Server().run()


def ssl_context(app: Flask, cert: str | None, key: str | None) -> tuple[str, str]:
    """The named certificate, or one made in the instance folder by a local certificate authority.

    Tablets trust the authority once (README, "HTTPS for cameras"); the server certificate it
    signs names localhost, 127.0.0.1 and this machine's host name and LAN address, and is made
    again, under the same authority, when those change or it nears its end."""
    if cert or key:
        from iop.ops import UserError

        if not (cert and key):
            raise UserError("--cert and --key go together.")
        for path in (cert, key):
            if not Path(path).is_file():
                raise UserError(f"{path} is not a file.")
        return cert, key
    return ensure_local_certificate(Path(app.instance_path) / "tls")


def ca_certificate_path(app: Flask) -> Path:
    return Path(app.instance_path) / "tls" / "ca.crt"


def local_names() -> tuple[list[str], list[str]]:
    """DNS names and IP addresses this server is reached by on the LAN (for its TLS certificate)."""
    names = ["localhost"]
    host = socket.gethostname().strip()
    if host and host != "localhost":
        names += [host] if "." in host else [host, f"{host}.local"]
    return names, ["127.0.0.1", "::1", *lan_addresses()]


def ensure_local_certificate(folder: Path, names: list[str] | None = None,
                             addresses: list[str] | None = None) -> tuple[str, str]:
    """(server.crt, server.key) in `folder`, signed by `folder`/ca.crt; made or renewed as needed."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if names is None or addresses is None:
        found_names, found_addresses = local_names()
        names, addresses = names or found_names, addresses or found_addresses
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca_crt, ca_key, crt, key = (folder / "ca.crt", folder / "ca.key", folder / "server.crt", folder / "server.key")
    now = dt.datetime.now(dt.timezone.utc)

    def write_key(path: Path, private_key) -> None:
        path.write_bytes(private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        path.chmod(0o600)

    if ca_crt.exists() and ca_key.exists():
        authority = x509.load_pem_x509_certificate(ca_crt.read_bytes())
        authority_key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    else:
        authority_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "IOP Kiosk local authority"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "IOP Kiosk")])
        authority = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(authority_key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(authority_key.public_key()),
                                    critical=False)
                     .sign(authority_key, hashes.SHA256()))
        write_key(ca_key, authority_key)
        ca_crt.write_bytes(authority.public_bytes(serialization.Encoding.PEM))
        crt.unlink(missing_ok=True)

    wanted = [x509.DNSName(name) for name in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    if crt.exists() and key.exists():
        current = x509.load_pem_x509_certificate(crt.read_bytes())
        try:
            sans = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            sans = []
        if (current.issuer == authority.subject and set(wanted) <= set(sans)
                and current.not_valid_after_utc - now > dt.timedelta(days=30)):
            return str(crt), str(key)

    server_key = ec.generate_private_key(ec.SECP256R1())
    certificate = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[-1] if names else "localhost")]))
                   .issuer_name(authority.subject).public_key(server_key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=397))
                   .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key()),
                                  critical=False)
                   .sign(authority_key, hashes.SHA256()))
    write_key(key, server_key)
    crt.write_bytes(certificate.public_bytes(serialization.Encoding.PEM)
                    + authority.public_bytes(serialization.Encoding.PEM))  # the chain, so clients see the issuer
    return str(crt), str(key)
