"""PII masking: e-mail addresses, IP addresses (v4 and v6) and phone numbers, with counts.

E-mail needs no context, so it is found, counted and replaced by RE2 over the whole Arrow array.
IP addresses and phone numbers need what RE2 cannot say: "not preceded/followed by a digit or a
dot" (so `1.2.3.4.5` or a longer digit run is not cut into an address), "not after the word
version" (`version 1.2.3.4` is a version number, not an address: we keep it), octets <= 255, a
digit count (E.164: at most 15), a real IPv6 parse. For those, a cheap RE2 pre-filter picks the
documents that could contain one, and only those go through Python `re` with lookarounds and a
validating replacement function. Dates (`2024-05-01`, `01.05.2024`), decimals, ISBNs and plain
numbers do not match any phone or address shape below (tested).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.text import scatter

Kind = Literal["email", "ip", "phone"]
KINDS: tuple[Kind, ...] = ("email", "ip", "phone")
PLACEHOLDERS: dict[Kind, str] = {"email": "<EMAIL>", "ip": "<IP_ADDRESS>", "phone": "<PHONE>"}

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = rf"[A-Za-z0-9][A-Za-z0-9._%+-]*@{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,24}}"

# -- IP addresses ---------------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![A-Za-z0-9_.]){_OCTET}(?:\.{_OCTET}){{3}}(?![A-Za-z0-9_]|\.\d)")
IPV6 = re.compile(r"(?<![A-Za-z0-9_:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4})"
                  r"(?![A-Za-z0-9_:])")
IP_CANDIDATE = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}"
_VERSION_BEFORE = re.compile(r"(?i)(?:\bv|\bver|\bversion|\brelease|\bbuild|\brev|\brevision|\bfirmware|\bpatch|"
                             r"版本|版本号)\.?\s*[:#]?\s*$")

# -- phone numbers --------------------------------------------------------------------------------
PHONE = re.compile("|".join([
    # Chinese mobile: 1[3-9] + 9 digits, optionally +86/0086, optionally grouped 3-4-4
    r"(?<![\d.+])(?:(?:\+|00)86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?![\d])",
    # international: +country code, then digit groups (the digit count is checked after matching)
    r"(?<![\w+])\+\d{1,3}(?:[\s.-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}(?![\d])",
    # North American style: (555) 123-4567, 555-123-4567, 555.123.4567 (same separator twice)
    r"(?<![\d.-])(?:\(\d{3}\)\s?\d{3}[-.\s]|\d{3}([-.\s])\d{3}\1)\d{4}(?![\d]|[.-]\d)",
    # Chinese landline: 010-12345678, 0755-1234567
    r"(?<![\d.-])0\d{2,3}-\d{7,8}(?![\d]|[.-]\d)",
]))
PHONE_CANDIDATE = (r"1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}|\+\d|\(\d{3}\)\s?\d{3}|\d{3}[-.\s]\d{3}[-.\s]\d{4}|"
                   r"0\d{2,3}-\d{7}")


def _valid_ipv6(text: str) -> bool:
    groups = [g for g in re.split(r"[:.]", text) if g]
    # at least two groups and five hex digits: "fe80::1" is an address, "a::b" in prose or code is not
    if len(groups) < 2 or sum(map(len, groups)) < 5 or ("::" not in text and text.count(":") < 7 and "." not in text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _phone_digits_ok(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    return 7 <= digits <= 15 if text.startswith("+") else 10 <= digits <= 15


def _masker(pattern: re.Pattern[str], valid: Callable[[re.Match[str]], bool], placeholder: str
            ) -> Callable[[str], tuple[str, int]]:
    def mask(text: str) -> tuple[str, int]:
        hits = 0

        def replace(m: re.Match[str]) -> str:
            nonlocal hits
            if not valid(m):
                return m.group(0)
            hits += 1
            return placeholder

        return pattern.sub(replace, text), hits

    return mask


def _ipv4_ok(m: re.Match[str]) -> bool:
    return not _VERSION_BEFORE.search(m.string, max(0, m.start() - 24), m.start())


def _ipv6_ok(m: re.Match[str]) -> bool:
    return _valid_ipv6(m.group(0))


def _phone_ok(m: re.Match[str]) -> bool:
    return _phone_digits_ok(m.group(0))


def _mask_python(texts: pa.Array, candidate: str, maskers: list[Callable[[str], tuple[str, int]]]
                 ) -> tuple[pa.Array, np.ndarray]:
    """Apply Python maskers only to the documents the RE2 `candidate` pattern flags."""
    counts = np.zeros(len(texts), np.int64)
    flagged = np.flatnonzero(pc.fill_null(pc.match_substring_regex(texts, candidate), False).to_numpy(
        zero_copy_only=False))
    if len(flagged) == 0:
        return texts, counts
    values = texts.take(pa.array(flagged)).to_pylist()
    changed = False
    for j, i in enumerate(flagged):
        text = values[j]
        for masker in maskers:
            text, hits = masker(text)
            counts[i] += hits
        if counts[i]:
            values[j] = text
            changed = True
    if not changed:
        return texts, counts
    return scatter(texts, flagged, pa.array(values, texts.type)), counts


def mask_pii(texts: pa.Array, kinds: Sequence[str] = KINDS,
             placeholders: Mapping[Kind, str] | None = None, mask: bool = True
             ) -> tuple[pa.Array, dict[str, np.ndarray]]:
    """Masked texts (unchanged if `mask` is false) and per-document counts per kind.

    Kinds run in a fixed order (e-mail, IP, phone) so a masked e-mail's digits are not re-counted.
    """
    ph = {**PLACEHOLDERS, **(placeholders or {})}
    texts = pc.fill_null(texts, "")
    original = texts
    counts: dict[str, np.ndarray] = {}
    if "email" in kinds:
        counts["email"] = pc.count_substring_regex(texts, EMAIL).to_numpy().astype(np.int64)
        if counts["email"].any():
            texts = pc.replace_substring_regex(texts, EMAIL, ph["email"].replace("\\", "\\\\"))
    if "ip" in kinds:
        texts, counts["ip"] = _mask_python(texts, IP_CANDIDATE, [_masker(IPV6, _ipv6_ok, ph["ip"]),
                                                                 _masker(IPV4, _ipv4_ok, ph["ip"])])
    if "phone" in kinds:
        texts, counts["phone"] = _mask_python(texts, PHONE_CANDIDATE, [_masker(PHONE, _phone_ok, ph["phone"])])
    return (texts if mask else original), counts
