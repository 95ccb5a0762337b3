"""GS1 identifiers for plums: GTIN per grade, lot numbers, SSCC for packed units, and GS1 Digital Link URIs.

Sources:

* GS1 General Specifications (Release 24.0), §7.9 "Check digit calculation" (mod-10, weights 3 and 1
  from the right), §3.2 (AI 00 SSCC: extension digit + GS1 Company Prefix + serial reference, 18
  digits), §3.3 (AI 01 GTIN-14), §3.4 (AI 10 batch/lot number: up to 20 characters of GS1 AI
  encodable character set 82).
* GS1 Digital Link Standard: URI Syntax (Release 1.4), §4: ``https://<domain>/01/<GTIN-14>/10/<lot>``
  for a lot-level trade item and ``https://<domain>/00/<SSCC>`` for a logistic unit; the lot is
  percent-encoded.

*Assumption* (configurable, ``Gs1Config``): the cooperative's GS1 Company Prefix. GS1 China (中国物品编码
中心) issues prefixes starting 690-699; the default ``6970000`` is a placeholder that an operator
replaces with the prefix it was issued. Each grade is one trade item (GTIN) with item references
``GRADE_ITEM_REFERENCE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

#: item reference per grade (one GTIN per grade of loose plums sold by kg)
GRADE_ITEM_REFERENCE = {"XL": 1, "L": 2, "M": 3}
#: item reference of ungraded plums (a harvest lot before grading)
UNGRADED_ITEM_REFERENCE = 9

#: GS1 AI encodable character set 82 (General Specifications figure 7.11-1)
_CSET82 = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}$")


def check_digit(digits: str) -> str:
    """GS1 mod-10 check digit of ``digits`` (the number without its check digit).

    Weights 3, 1, 3, ... from the rightmost digit (General Specifications §7.9.1).

    >>> check_digit("0950600013435")
    '2'
    """
    if not digits.isdigit():
        raise ValueError(f"not all digits: {digits!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def is_valid(number: str) -> bool:
    """True when ``number`` (digits, its last digit the check digit) has a correct GS1 check digit."""
    return len(number) >= 2 and number.isdigit() and check_digit(number[:-1]) == number[-1]


@dataclass(frozen=True)
class Gs1Config:
    """What the identifiers need: the company prefix (7-10 digits) and the resolver's base URL."""

    company_prefix: str = "6970000"
    resolver: str = "https://id.yuncang.example"

    def __post_init__(self) -> None:
        if not (self.company_prefix.isdigit() and 6 <= len(self.company_prefix) <= 11):
            raise ValueError(f"GS1 company prefix must be 6-11 digits, got {self.company_prefix!r}")
        if not self.resolver.startswith(("https://", "http://")):
            raise ValueError(f"resolver must be an http(s) URL, got {self.resolver!r}")


def gtin_for_grade(cfg: Gs1Config, grade: str | None) -> str:
    """GTIN-14 of loose plums of ``grade`` (None: ungraded): indicator 0 + prefix + item reference + check
    digit."""
    width = 12 - len(cfg.company_prefix)
    ref = UNGRADED_ITEM_REFERENCE if grade is None else GRADE_ITEM_REFERENCE[grade]
    body = f"0{cfg.company_prefix}{ref:0{width}d}"
    return body + check_digit(body)


def sscc(cfg: Gs1Config, serial: int, extension: int = 0) -> str:
    """SSCC (18 digits) for a packed unit: extension digit + prefix + serial reference + check digit."""
    width = 16 - len(cfg.company_prefix)
    if not (0 <= serial < 10**width):
        raise ValueError(f"serial {serial} does not fit {width} digits")
    body = f"{extension}{cfg.company_prefix}{serial:0{width}d}"
    return body + check_digit(body)


def valid_lot(lot: str) -> bool:
    """True when ``lot`` can be a GS1 AI (10) value: 1-20 characters of character set 82."""
    return bool(_CSET82.match(lot))


def lot_uri(cfg: Gs1Config, gtin: str, lot: str) -> str:
    """GS1 Digital Link URI of a lot of a trade item: ``<resolver>/01/<gtin>/10/<lot>``."""
    if not (len(gtin) == 14 and is_valid(gtin)):
        raise ValueError(f"not a GTIN-14: {gtin!r}")
    if not valid_lot(lot):
        raise ValueError(f"not a GS1 lot number: {lot!r}")
    return f"{cfg.resolver.rstrip('/')}/01/{gtin}/10/{quote(lot, safe='')}"


def sscc_uri(cfg: Gs1Config, code: str) -> str:
    """GS1 Digital Link URI of a logistic unit: ``<resolver>/00/<sscc>``."""
    if not (len(code) == 18 and is_valid(code)):
        raise ValueError(f"not an SSCC: {code!r}")
    return f"{cfg.resolver.rstrip('/')}/00/{code}"


@dataclass(frozen=True)
class ParsedLink:
    """A parsed Digital Link path: ``gtin`` + ``lot`` (AI 01/10) or ``sscc`` (AI 00)."""

    gtin: str | None = None
    lot: str | None = None
    sscc: str | None = None


def parse_link(uri_or_path: str) -> ParsedLink:
    """Parse ``/01/<gtin>/10/<lot>`` or ``/00/<sscc>`` (a full URI or only its path); ``ValueError``
    for anything else, including a wrong check digit."""
    path = urlsplit(uri_or_path).path if "://" in uri_or_path else uri_or_path
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2 and parts[0] == "00":
        if not (len(parts[1]) == 18 and is_valid(parts[1])):
            raise ValueError(f"not an SSCC: {parts[1]!r}")
        return ParsedLink(sscc=parts[1])
    if len(parts) == 4 and parts[0] == "01" and parts[2] == "10":
        gtin, lot = parts[1], unquote(parts[3])
        if len(gtin) == 13:          # GTIN-13 is allowed in a Digital Link and means indicator 0
            gtin = "0" + gtin
        if not (len(gtin) == 14 and is_valid(gtin)):
            raise ValueError(f"not a GTIN: {parts[1]!r}")
        if not valid_lot(lot):
            raise ValueError(f"not a GS1 lot number: {lot!r}")
        return ParsedLink(gtin=gtin, lot=lot)
    raise ValueError(f"not a GS1 Digital Link path this resolver serves: {path!r}")
