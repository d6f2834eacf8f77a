"""Schemathesis hooks for `make fuzz-api`: values for the formats the OpenAPI document names but
JSON Schema cannot check (loaded with SCHEMATHESIS_HOOKS=fuzz_api_hooks).

`fi-identity-code`: a Finnish personal identity code (henkilötunnus) with a real birth date, an
individual number 002-899 and the check character the number gives (CL-2). The document's pattern
lets through codes whose check character is wrong, which the server rightly refuses with 400.

`fi-business-id`: a Finnish business id (Y-tunnus), seven digits, a hyphen and the check digit
the digits give (weights 7, 9, 10, 5, 8, 4, 2; remainder 1 is never issued)."""

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


BUSINESS_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2]


@st.composite
def business_ids(draw):
    digits = draw(
        st.lists(st.integers(min_value=0, max_value=9), min_size=7, max_size=7).filter(
            lambda d: sum(x * w for x, w in zip(d, BUSINESS_ID_WEIGHTS)) % 11 != 1
        )
    )
    remainder = sum(x * w for x, w in zip(digits, BUSINESS_ID_WEIGHTS)) % 11
    check = 0 if remainder == 0 else 11 - remainder
    return "".join(map(str, digits)) + f"-{check}"


schemathesis.openapi.format("fi-identity-code", identity_codes())
schemathesis.openapi.format("fi-business-id", business_ids())
