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
# RE2 pre-filter for addresses (the kinds' own pre-filters are in the patterns file)
ADDRESS_CANDIDATE = (EMAIL + r"|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|(?:[0-9A-Fa-f]{1,4}:){2,}[0-9A-Fa-f]{0,4}"
                     r"|::[0-9A-Fa-f]{1,4}|[0-9A-Fa-f]{1,4}::[0-9A-Fa-f]")

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


def redact_addresses(text: str, kinds: set[str], rules: SecretRules) -> tuple[str, dict[str, int]]:
    """E-mail and public IP addresses (filters/pii.py's patterns and checks)."""
    counts: dict[str, int] = {}
    if "email" in kinds:
        text, n = re.subn(EMAIL, ADDRESS_PLACEHOLDERS["email"], text)
        if n:
            counts["email"] = n
    if "ip" in kinds:
        hits = 0

        def replace(m: re.Match[str], v6: bool) -> str:
            nonlocal hits
            ok = _valid_ipv6(m.group(0)) if v6 else _ipv4_ok(m)
            if not ok or not _public_ip(m, rules.keep_ips):
                return m.group(0)
            hits += 1
            return ADDRESS_PLACEHOLDERS["ip"]

        text = IPV6.sub(lambda m: replace(m, True), text)
        text = IPV4.sub(lambda m: replace(m, False), text)
        if hits:
            counts["ip"] = hits
    return text, counts


def redact_secrets(texts: pa.Array, kinds: tuple[str, ...] | list[str] = KINDS, path: str | None = None
                   ) -> tuple[pa.Array, list[dict[str, int]]]:
    """Redacted texts and, per document, matches per kind (empty dict = none)."""
    rules = load_secret_rules(path)
    wanted = set(kinds)
    texts = pc.fill_null(texts, "")
    counts: list[dict[str, int]] = [{} for _ in range(len(texts))]
    # per kind, the documents its RE2 pre-filter flags; only those see the kind's Python pattern
    checks = [(k.name, k.candidate) for k in rules.kinds if k.name in wanted]
    if wanted & set(ADDRESS_KINDS):
        checks.append(("addresses", ADDRESS_CANDIDATE))
    if not checks:
        return texts, counts
    flags = np.stack([pc.match_substring_regex(texts, c).to_numpy(zero_copy_only=False) for _, c in checks], axis=1)
    flagged = np.flatnonzero(flags.any(axis=1))
    if len(flagged) == 0:
        return texts, counts
    values = texts.take(pa.array(flagged)).to_pylist()
    changed = False
    for j, i in enumerate(flagged):
        doc_kinds = {name for (name, _), hit in zip(checks, flags[i], strict=True) if hit}
        text, found = redact_text(values[j], doc_kinds, rules)
        if "addresses" in doc_kinds:
            text, addresses = redact_addresses(text, wanted & set(ADDRESS_KINDS), rules)
            found.update(addresses)
        if found:
            counts[i] = found
            values[j] = text
            changed = True
    if not changed:
        return texts, counts
    return scatter(texts, flagged, pa.array(values, texts.type)), counts
