"""Billing service codes (docs/domain.md, "Billing facts"): which code system a code belongs to, by its
shape. Pure, so the settings (IOP_FHIR_SERVICE_CODE) and the FHIR export read the same rule."""
from __future__ import annotations

import re

CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"

_CPT = re.compile(r"[0-9]{4}[0-9FTU]")  # CPT: five digits, or four and F, T or U (categories II, III, PLA)
_HCPCS = re.compile(r"[A-V][0-9]{4}")  # HCPCS Level II: a letter A-V and four digits (H0015, S9480)


def service_code_system(code: str) -> str | None:
    """The code system of a service code by its shape (CPT or HCPCS Level II), None when it is neither."""
    if _CPT.fullmatch(code):
        return CPT
    if _HCPCS.fullmatch(code):
        return HCPCS
    return None
