"""Credential redaction: cloud keys, service tokens, private keys, passwords and secrets in code.

Each kind is a pattern in `code_data/secrets.yaml` (after detect-secrets' plugins and bigcode's PII
pipeline). A match is replaced by its kind's placeholder (`<SECRET_AWS_KEY>`); when the pattern has
a group named `secret`, only that group is, so `key = "AKIA…"` becomes `key = "<SECRET_AWS_KEY>"` and
`postgres://app:pw@db` becomes `postgres://app:<SECRET_PASSWORD>@db`: quotes, names and URLs stay and
code keeps parsing. Values that are never secrets are left alone: templated (`${DB_PASSWORD}`,
`{{ token }}`, `<your-key>`), placeholder words (`changeme`, `xxxx`), UUIDs, versions, file paths,
sequential runs (`abcdef123456`), environment lookups, digests on hash lines; `generated_looking` kinds need letters
and digits. E-mail and IP addresses use `filters/pii.py`'s rules, leaving private and loopback
addresses and popular public DNS servers as bigcode's pipeline does.

Each kind has an RE2 pre-filter (a superset of its matches) run over the whole Arrow array; a kind's
Python pattern only runs on the documents its pre-filter flags.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from filters.pii import EMAIL, IPV4, IPV6, _ipv4_ok, _valid_ipv6
from filters.text import scatter

DATA = Path(__file__).with_name("code_data") / "secrets.yaml"
ADDRESS_KINDS = ("email", "ip")
ADDRESS_PLACEHOLDERS = {"email": "<EMAIL>", "ip": "<IP_ADDRESS>"}
# RE2 pre-filters for addresses (the kinds' own pre-filters are in the patterns file): every e-mail address
# holds "@" (a literal: RE2 skips ahead by memchr), every IPv4 and every IPv6 address that filters/pii.py's
# checks accept a match of its candidate
EMAIL_CANDIDATE = "@"
IPV4_CANDIDATE = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
IPV6_CANDIDATE = r"(?:[0-9A-Fa-f]{1,4}:){2,}[0-9A-Fa-f]{0,4}|::[0-9A-Fa-f]{1,4}|[0-9A-Fa-f]{1,4}::[0-9A-Fa-f]"

@dataclass(frozen=True)
class Kind:
    name: str
    pattern: re.Pattern[str]
    placeholder: str
    generated_looking: bool
    candidate: str  # RE2: documents it does not flag cannot match `pattern`


@dataclass(frozen=True)
class SecretRules:
    kinds: tuple[Kind, ...]
    not_secret: tuple[re.Pattern[str], ...]
    lookup: re.Pattern[str]
    hash_line: re.Pattern[str]
    sequences: tuple[str, ...]
    keep_ips: frozenset[str]


@lru_cache(maxsize=4)
def load_secret_rules(path: str | None = None) -> SecretRules:
    data = yaml.safe_load(Path(path or DATA).read_text())
    kinds = tuple(Kind(name, re.compile(k["pattern"]), k["placeholder"], bool(k.get("generated_looking")),
                       k["candidate"]) for name, k in data["kinds"].items())
    ns = data["not_secrets"]
    return SecretRules(kinds=kinds,
                       not_secret=tuple(re.compile(v) for k, v in ns.items() if k not in ("lookup", "hash_line")),
                       lookup=re.compile(ns["lookup"]), hash_line=re.compile(ns["hash_line"]),
                       sequences=tuple(str(s) for s in data["sequences"]), keep_ips=frozenset(data["keep_ips"]))


KINDS: tuple[str, ...] = tuple(k.name for k in load_secret_rules().kinds) + ADDRESS_KINDS


def _line_of(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start: end if end >= 0 else len(text)]


def is_not_secret(value: str, kind: Kind, text: str, pos: int, rules: SecretRules) -> bool:
    """The false-positive guards: templated, placeholder, UUID, sequential, lookup, digest values."""
    if any(p.match(value) for p in rules.not_secret) or rules.lookup.search(value) or value.startswith("<SECRET_"):
        return True
    upper = value.upper()
    if len(set(upper)) <= 2 or any(upper in seq for seq in rules.sequences):
        return True
    if kind.generated_looking and not (re.search(r"[A-Za-z]", value) and re.search(r"\d", value)):
        return True
    return bool(re.fullmatch(r"[0-9a-fA-F]{32,128}", value) and rules.hash_line.search(_line_of(text, pos)))


def redact_text(text: str, kinds: set[str], rules: SecretRules) -> tuple[str, dict[str, int]]:
    """One text with the credentials of `kinds` replaced, and matches per kind."""
    counts: dict[str, int] = {}
    for kind in rules.kinds:
        if kind.name not in kinds:
            continue
        hits = 0

        def replace(m: re.Match[str], kind: Kind = kind) -> str:
            nonlocal hits
            group = "secret" if "secret" in m.re.groupindex and m.group("secret") is not None else 0
            value = m.group(group)
            if is_not_secret(value, kind, m.string, m.start(group), rules):
                return m.group(0)
            hits += 1
            start, end = m.start(group) - m.start(), m.end(group) - m.start()
            whole = m.group(0)
            return whole[:start] + kind.placeholder + whole[end:]

        text = kind.pattern.sub(replace, text)
        if hits:
            counts[kind.name] = hits
    return text, counts


def _public_ip(m: re.Match[str], keep: frozenset[str]) -> bool:
    value = m.group(0)
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return not (address.is_private or address.is_loopback or address.is_link_local or address.is_unspecified
                or address.is_multicast or address.is_reserved or value in keep)


def redact_ips(text: str, rules: SecretRules, v6: bool = True, v4: bool = True) -> tuple[str, int]:
    """Public IP addresses (filters/pii.py's patterns and checks) replaced, and how many; `v6`/`v4` False skips
    a pattern where its candidate found nothing (then it could not replace anything)."""
    hits = 0

    def replace(m: re.Match[str], v6: bool) -> str:
        nonlocal hits
        ok = _valid_ipv6(m.group(0)) if v6 else _ipv4_ok(m)
        if not ok or not _public_ip(m, rules.keep_ips):
            return m.group(0)
        hits += 1
        return ADDRESS_PLACEHOLDERS["ip"]

    if v6:
        text = IPV6.sub(lambda m: replace(m, True), text)
    if v4:
        text = IPV4.sub(lambda m: replace(m, False), text)
    return text, hits


def redact_addresses(text: str, kinds: set[str], rules: SecretRules) -> tuple[str, dict[str, int]]:
    """E-mail and public IP addresses of one text (what `redact_secrets` does to a whole array)."""
    counts: dict[str, int] = {}
    if "email" in kinds:
        text, n = re.subn(EMAIL, ADDRESS_PLACEHOLDERS["email"], text)
        if n:
            counts["email"] = n
    if "ip" in kinds:
        text, n = redact_ips(text, rules)
        if n:
            counts["ip"] = n
    return text, counts


def _flags(texts: pa.Array, candidate: str) -> np.ndarray:
    return pc.match_substring_regex(texts, candidate).to_numpy(zero_copy_only=False)


def _redact_kinds(texts: pa.Array, wanted: set[str], rules: SecretRules, counts: list[dict[str, int]]) -> pa.Array:
    """The credential kinds: per kind, its RE2 pre-filter picks the documents its Python pattern runs on."""
    kinds = [k for k in rules.kinds if k.name in wanted]
    checks = [k.name for k in kinds]
    if not checks:
        return texts
    # one RE2 pass with every candidate finds the few documents worth a pass per kind
    any_kind = np.flatnonzero(_flags(texts, "|".join(f"(?:{k.candidate})" for k in kinds)))
    subset = texts.take(pa.array(any_kind, pa.int64()))
    flags = np.stack([_flags(subset, k.candidate) for k in kinds], axis=1)
    hit = flags.any(axis=1)
    flagged, flags = any_kind[hit], flags[hit]
    values = subset.filter(pa.array(hit)).to_pylist()
    changed = []
    for j, i in enumerate(flagged.tolist()):
        text, found = redact_text(values[j], {name for name, on in zip(checks, flags[j], strict=True) if on}, rules)
        if found:
            counts[i].update(found)
            values[j] = text
            changed.append(j)
    if not changed:
        return texts
    return scatter(texts, flagged[changed], pa.array([values[j] for j in changed], texts.type))


def _redact_emails(texts: pa.Array, flagged: np.ndarray, counts: list[dict[str, int]]) -> pa.Array:
    """E-mail addresses replaced by RE2 over the flagged documents at once (the pattern has no lookaround, and
    RE2's leftmost-first matches are Python's, so the result is `re.subn`'s)."""
    subset = texts.take(pa.array(flagged, pa.int64()))
    found = pc.count_substring_regex(subset, EMAIL).to_numpy(zero_copy_only=False)
    hit = np.flatnonzero(found)
    if len(hit) == 0:
        return texts
    for j in hit.tolist():
        counts[int(flagged[j])]["email"] = int(found[j])
    replaced = pc.replace_substring_regex(subset.take(pa.array(hit, pa.int64())), EMAIL, ADDRESS_PLACEHOLDERS["email"])
    return scatter(texts, flagged[hit], replaced)


def redact_secrets(texts: pa.Array, kinds: tuple[str, ...] | list[str] = KINDS, path: str | None = None
                   ) -> tuple[pa.Array, list[dict[str, int]]]:
    """Redacted texts and, per document, matches per kind (empty dict = none). Per document the order is
    that of `redact_text` then `redact_addresses`: credential kinds, e-mail addresses, IP addresses. The
    pre-filters read the input texts: a placeholder never makes a new address."""
    rules = load_secret_rules(path)
    wanted = set(kinds)
    original = texts = pc.fill_null(texts, "")
    counts: list[dict[str, int]] = [{} for _ in range(len(texts))]
    texts = _redact_kinds(texts, wanted, rules, counts)
    if "email" in wanted:
        flagged = np.flatnonzero(_flags(original, EMAIL_CANDIDATE))
        if len(flagged):
            texts = _redact_emails(texts, flagged, counts)
    if "ip" in wanted:
        v6, v4 = _flags(original, IPV6_CANDIDATE), _flags(original, IPV4_CANDIDATE)
        flagged = np.flatnonzero(v6 | v4)
        values = texts.take(pa.array(flagged, pa.int64())).to_pylist()
        changed = []
        for j, i in enumerate(flagged.tolist()):
            values[j], hits = redact_ips(values[j], rules, bool(v6[i]), bool(v4[i]))
            if hits:
                counts[i]["ip"] = hits
                changed.append(j)
        if changed:
            texts = scatter(texts, flagged[changed], pa.array([values[j] for j in changed], texts.type))
    return texts, counts
