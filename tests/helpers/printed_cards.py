"""Printed cards read back by an independent decoder: poppler renders the PDF, zbar reads each QR code."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ZBARIMG = shutil.which("zbarimg")
PDFTOPPM = shutil.which("pdftoppm")
PDFTOTEXT = shutil.which("pdftotext")


def decode_pdf(pdf: Path) -> list[str]:
    """Every QR payload in the PDF, read by zbar from 200 dpi renderings (an independent decoder)."""
    assert ZBARIMG and PDFTOPPM, "scripts/test installs zbar-tools and poppler-utils"
    prefix = pdf.with_suffix("")
    subprocess.run([PDFTOPPM, "-r", "200", "-gray", "-png", str(pdf), str(prefix)], check=True)
    found = []
    for image in sorted(pdf.parent.glob(prefix.name + "-*.png")):
        result = subprocess.run([ZBARIMG, "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
                                capture_output=True, text=True)
        found += [line for line in result.stdout.splitlines() if line]
    return found
