"""Schemathesis hooks for `make fuzz-api`: values for the formats the OpenAPI document names but
JSON Schema cannot check (loaded with SCHEMATHESIS_HOOKS=fuzz_api_hooks).

`fi-identity-code`: a Finnish personal identity code (henkilötunnus) with a real birth date, an
individual number 002-899 and the check character the number gives (CL-2). The document's pattern
lets through codes whose check character is wrong, which the server rightly refuses with 400."""

import datetime

import schemathesis
from hypothesis import strategies as st

CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
CENTURY_SIGNS = {18: "+", 19: "-", 20: "A"}


@st.composite
def identity_codes(draw):
    born = draw(st.dates(min_value=datetime.date(1890, 1, 1), max_value=datetime.date(2025, 12, 31)))
    individual = draw(st.integers(min_value=2, max_value=899))
    digits = f"{born.day:02}{born.month:02}{born.year % 100:02}"
    check = CHECK_CHARACTERS[int(f"{digits}{individual:03}") % 31]
    return f"{digits}{CENTURY_SIGNS[born.year // 100]}{individual:03}{check}"


schemathesis.openapi.format("fi-identity-code", identity_codes())
