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
        *([f"  Tablet certificate:  {base}/kiosk/tls-ca.crt (trust it once on each tablet; README, HTTPS for cameras)"]
          if base.startswith("https://") else []),
        "Press Ctrl+C to stop.",
    ])


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
    """DNS names and IP addresses this server is reached by on the LAN (best effort, no traffic sent)."""
    import socket

    names = ["localhost"]
    host = socket.gethostname().strip()
    if host and host != "localhost":
        names += [host] if "." in host else [host, f"{host}.local"]
    addresses = ["127.0.0.1", "::1"]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # a documentation address: picks the LAN route, sends nothing
            lan = probe.getsockname()[0]
        if lan and lan not in addresses and not lan.startswith("127."):
            addresses.append(lan)
    except OSError:
        pass
    return names, addresses


def ensure_local_certificate(folder: Path, names: list[str] | None = None,
                             addresses: list[str] | None = None) -> tuple[str, str]:
    """(server.crt, server.key) in `folder`, signed by `folder`/ca.crt; made or renewed as needed."""
    import datetime as dt
    import ipaddress

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
