"""Text generator for the demo corpus: word lists, sentence templates and document builders.

The word lists and sentence templates are data (`pipeline/demo/data/*.yaml`, read once by
`wordlists.load`); everything is driven by an explicit `random.Random`, so one seed always yields the
same document. Templates are compiled once into tuples of parts:

* a literal `str`;
* a `tuple` of alternatives (from `[a|b|c]` in the template, or a word-list slot `{name}`);
* a `Ctx` reference to a per-document value (`{UPPER}` names: the city, the person, topic pools);
* a callable `f(rng) -> str` (numbers, dates, names built on the fly).

Literal runs are kept short and slots frequent so that two independently generated documents
share almost no word 5-grams (diversity), while a document never uses a template twice (no
duplicated lines, little n-gram repetition: the Gopher and FineWeb rules pass).

Documents can also be rendered as *units* (each part's value, plus the part it came from), which
is what the near-duplicate editor needs: it re-draws a slot ("said" -> "noted", one city for
another), appends a clause, deletes or swaps sentences, and measures the Jaccard as it goes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from pipeline.demo.wordlists import load

# word lists and sentence templates (pipeline/demo/data/*.yaml), read once

_VOCABULARY_EN = load("vocabulary_en")
_NEWS_EN = load("news_en")
_ENCYCLOPEDIA_EN = load("encyclopedia_en")
_FORUM_EN = load("forum_en")
_CODE = load("code")
_MATH = load("math")
_VOCABULARY_ZH = load("vocabulary_zh")
_NEWS_ZH = load("news_zh")
_ENCYCLOPEDIA_ZH = load("encyclopedia_zh")
_FORUM_ZH = load("forum_zh")
_LOW_QUALITY = load("low_quality")
_SPAM = load("spam")
_SHORT = load("short")
_NEAR_DUP = load("near_dup")
_URLS = load("urls")


# ----------------------------------------------------------------------------------------------
# shingles and normalization (shared with the tests and the truth file)

_PUNCT_RE = re.compile(r"[^\w\s]+")
_ASCII_PUNCT = bytes(c for c in range(128) if _PUNCT_RE.match(chr(c)))
_NON_HAN_RE = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def normalize_for_shingles(text: str) -> list[str]:
    """Tokens for shingling: lower-cased words with punctuation removed, or Han characters.

    Text that is mostly Han characters has no spaces between words, so it is compared by
    characters (whitespace and punctuation removed) instead of whitespace-split words.
    """
    low = text.lower()
    if low.isascii():  # fast path, same result as the regex: delete what is neither \w nor \s
        return low.encode("ascii").translate(None, _ASCII_PUNCT).decode("ascii").split()
    t = _PUNCT_RE.sub("", low)
    toks = t.split()
    if toks:
        chars = "".join(toks)
        if len(_NON_HAN_RE.sub("", chars)) * 2 >= len(chars):
            return list(chars)
    return toks


def shingle_set(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """The set of token n-grams (a text shorter than n tokens is one shingle of all its tokens)."""
    toks = normalize_for_shingles(text)
    if len(toks) < n:
        return {tuple(toks)} if toks else set()
    if n == 5:
        return set(zip(toks, toks[1:], toks[2:], toks[3:], toks[4:], strict=False))
    return set(zip(*[toks[i:] for i in range(n)], strict=False))


def _jaccard_sets(a: set[Any], b: set[Any]) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def shingle_jaccard(a: str, b: str, n: int = 5) -> float:
    """Jaccard similarity of the word (or Han character) n-gram sets of two texts."""
    return _jaccard_sets(shingle_set(a, n), shingle_set(b, n))


def normalize_for_exact(text: str) -> str:
    """What exact dedup hashes: lower-cased, whitespace runs collapsed to one space, trimmed."""
    return " ".join(text.lower().split())


# ----------------------------------------------------------------------------------------------
# template engine


class Ctx:
    """A per-document value in a template: a string, or a tuple to draw from at each use."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"Ctx({self.key})"


class NestedAlt:
    """Alternatives of which some contain slots (`[in {month}|later this year]`)."""

    __slots__ = ("options",)

    def __init__(self, options: tuple[Any, ...]) -> None:
        self.options = options

    def render(self, rng: Random, ctx: dict[str, Any]) -> str:
        c = self.options[int(rng.random() * len(self.options))]
        return c if type(c) is str else c.fast(rng, rng.random, ctx)


class _Bound:
    """A nested alternative bound to its document context, so the editor can re-draw it."""

    __slots__ = ("alt", "ctx")

    def __init__(self, alt: NestedAlt, ctx: dict[str, Any]) -> None:
        self.alt = alt
        self.ctx = ctx

    def __call__(self, rng: Random) -> str:
        return self.alt.render(rng, self.ctx)


Part = Any  # str | tuple[str, ...] | Ctx | NestedAlt | Callable[[Random], str]
Parts = tuple[Part, ...]
Slots = dict[str, Any]

_TPL_RE = re.compile(r"\{(\w+)\}|\[([^\[\]]*)\]")
_TPL_NOALT_RE = re.compile(r"\{(\w+)\}")
_TERMINAL = (".", "?", "!", "\u3002", "\uff1f", "\uff01")


class Template(tuple[Any, ...]):
    """Compiled parts plus `fast(rng, rnd, ctx)`: generated code making the same draws as `render`."""

    fast: Callable[[Random, Callable[[], float], dict[str, Any]], str]
    needs_cap: bool  # False when the template starts with an upper-case literal


def _codegen(parts: tuple[Part, ...]) -> Callable[[Random, Callable[[], float], dict[str, Any]], str]:
    """Straight-line code for one template: ~3x faster than interpreting the parts."""
    ns: dict[str, Any] = {"int": int, "type": type, "str": str, "len": len}
    exprs = []
    for i, p in enumerate(parts):
        t = type(p)
        if t is str:
            exprs.append(repr(p))
        elif t is tuple:
            ns[f"a{i}"] = p
            exprs.append(f"a{i}[int(rnd() * {len(p)})]")
        elif t is Ctx:
            exprs.append(f"(c if type(c := ctx[{p.key!r}]) is str else c[int(rnd() * len(c))])")
        elif t is NestedAlt:
            ns[f"a{i}"] = p
            exprs.append(f"a{i}.render(rng, ctx)")
        else:
            ns[f"a{i}"] = p
            exprs.append(f"a{i}(rng)")
    if not exprs:
        return lambda rng, rnd, ctx: ""
    src = "def f(rng, rnd, ctx):\n    return ''.join((" + ", ".join(exprs) + ",))\n"
    exec(src, ns)  # code generated from our own templates only
    return ns["f"]


def compile_template(src: str, slots: Slots, alternations: bool = True) -> Template:
    """Parse `{slot}` / `[a|b]` markup into parts; a trailing terminal mark becomes its own part.

    Upper-case slot names are per-document context values; others must be in `slots`.
    `alternations=False` is for code templates, where square brackets are literal.
    """
    parts: list[Part] = []
    pos = 0
    for m in (_TPL_RE if alternations else _TPL_NOALT_RE).finditer(src):
        if m.start() > pos:
            parts.append(src[pos:m.start()])
        name = m.group(1)
        if name is not None:
            if name in slots:
                parts.append(slots[name])
            elif name.isupper():
                parts.append(Ctx(name))
            else:
                raise KeyError(f"unknown slot {name!r} in template {src!r}")
        else:
            options = m.group(2).split("|")
            if any("{" in o for o in options):
                parts.append(NestedAlt(tuple(o if "{" not in o else compile_template(o, slots, alternations)
                                             for o in options)))
            else:
                parts.append(tuple(options))
        pos = m.end()
    if pos < len(src):
        parts.append(src[pos:])
    last = parts[-1] if parts else None
    if type(last) is str and len(last) > 1 and last.endswith(_TERMINAL):
        parts[-1:] = [last[:-1], last[-1]]
    tpl = Template(parts)
    tpl.fast = _codegen(tpl)
    first = parts[0] if parts else ""
    tpl.needs_cap = not (type(first) is str and first[:1].isupper())
    return tpl


def compile_all(srcs: Sequence[str], slots: Slots, alternations: bool = True) -> tuple[Template, ...]:
    return tuple(compile_template(s, slots, alternations) for s in srcs)


def render(parts: Parts, rng: Random, ctx: dict[str, Any]) -> str:
    """One sentence as text (the hot path: no allocation beyond the output list)."""
    rnd = rng.random
    out: list[str] = []
    for p in parts:
        t = type(p)
        if t is str:
            out.append(p)
        elif t is tuple:
            out.append(p[int(rnd() * len(p))])
        elif t is Ctx:
            v = ctx[p.key]
            if type(v) is tuple:
                v = v[int(rnd() * len(v))]
            out.append(v)
        elif t is NestedAlt:
            out.append(p.render(rng, ctx))
        else:
            out.append(p(rng))
    return "".join(out)


def render_units(parts: Parts, rng: Random, ctx: dict[str, Any]) -> list[list[Any]]:
    """Same draws as `render`, kept as [value, part-to-redraw-from or None] units."""
    rnd = rng.random
    out: list[list[Any]] = []
    for p in parts:
        t = type(p)
        if t is str:
            out.append([p, None])
        elif t is tuple:
            out.append([p[int(rnd() * len(p))], p if len(p) > 1 else None])
        elif t is Ctx:
            v = ctx[p.key]
            if type(v) is tuple:
                out.append([v[int(rnd() * len(v))], v if len(v) > 1 else None])
            else:
                out.append([v, None])
        elif t is NestedAlt:
            out.append([p.render(rng, ctx), _Bound(p, ctx)])
        else:
            out.append([p(rng), p])
    return out


def draw(part: Part, rng: Random) -> str:
    """A fresh value from a redrawable part."""
    if type(part) is tuple:
        return part[int(rng.random() * len(part))]
    return part(rng)


@dataclass
class Block:
    """A paragraph (prose) or a block of lines (code): sentences drawn from templates."""

    sentences: Sequence[Parts | str]
    ctx: dict[str, Any] | None = None


@dataclass
class DocSpec:
    """What a generator decided: blocks of templates and how to join them."""

    blocks: list[Block]
    ctx: dict[str, Any]
    sep: str = " "  # between sentences of a block
    title: str | None = None
    subtype: str | None = None
    lang: str = "en"
    domain: str = "news"
    cap: bool = True  # capitalize each sentence's first letter (prose, not code)


@dataclass
class Doc:
    text: str
    title: str | None
    subtype: str | None


@dataclass
class UnitDoc:
    """A document as editable units; `render()` reproduces the text exactly."""

    sentences: list[list[list[Any]]]  # every sentence ever made, as units
    order: list[list[int]]  # per block: indices into `sentences`
    sep: str
    title: str | None
    subtype: str | None
    lang: str
    domain: str
    cap: bool = True

    def render(self) -> str:
        sents = self.sentences
        sep = self.sep
        blocks = []
        for idx in self.order:
            if idx:
                if self.cap:
                    blocks.append(sep.join(_cap("".join([u[0] for u in sents[i]])) for i in idx))
                else:
                    blocks.append(sep.join("".join([u[0] for u in sents[i]]) for i in idx))
        return "\n\n".join(blocks)


def _cap(s: str) -> str:
    return s[0].upper() + s[1:] if s[:1].islower() else s


def realize(spec: DocSpec, rng: Random) -> Doc:
    base = spec.ctx
    blocks = []
    rnd = rng.random
    for b in spec.blocks:
        ctx = base if b.ctx is None else {**base, **b.ctx}
        if spec.cap:
            sents = [(_cap(s.fast(rng, rnd, ctx)) if s.needs_cap else s.fast(rng, rnd, ctx))
                     if type(s) is Template else _cap(s if isinstance(s, str) else render(s, rng, ctx))
                     for s in b.sentences]
        else:
            sents = [s.fast(rng, rnd, ctx) if type(s) is Template else s if isinstance(s, str) else render(s, rng, ctx)
                     for s in b.sentences]
        blocks.append(spec.sep.join(sents))
    return Doc("\n\n".join(blocks), spec.title, spec.subtype)


def realize_units(spec: DocSpec, rng: Random) -> UnitDoc:
    base = spec.ctx
    sentences: list[list[list[Any]]] = []
    order: list[list[int]] = []
    for b in spec.blocks:
        ctx = base if b.ctx is None else {**base, **b.ctx}
        idx = []
        for s in b.sentences:
            idx.append(len(sentences))
            sentences.append([[s, None]] if isinstance(s, str) else render_units(s, rng, ctx))
        order.append(idx)
    return UnitDoc(sentences, order, spec.sep, spec.title, spec.subtype, spec.lang, spec.domain, spec.cap)


# ----------------------------------------------------------------------------------------------
# helpers for word lists and numbers


def _pick(rng: Random, seq: Sequence[Any]) -> Any:
    return seq[int(rng.random() * len(seq))]


def _sample(rng: Random, n: int, k: int) -> list[int]:
    """k distinct indices below n (partial Fisher-Yates: much cheaper than Random.sample)."""
    idx = list(range(n))
    rnd = rng.random
    for i in range(min(k, n)):
        j = i + int(rnd() * (n - i))
        idx[i], idx[j] = idx[j], idx[i]
    return idx[:k]


def _shuffle(rng: Random, xs: list[Any]) -> None:
    rnd = rng.random
    for i in range(len(xs) - 1, 0, -1):
        j = int(rnd() * (i + 1))
        xs[i], xs[j] = xs[j], xs[i]


def _int_between(lo: int, hi: int) -> Callable[[Random], str]:
    span = hi - lo + 1
    return lambda rng: str(lo + int(rng.random() * span))


def _thousands(lo: int, hi: int) -> Callable[[Random], str]:
    span = hi - lo + 1
    return lambda rng: f"{lo + int(rng.random() * span):,}"


def _decimal(lo: float, hi: float, nd: int = 1) -> Callable[[Random], str]:
    return lambda rng: f"{lo + rng.random() * (hi - lo):.{nd}f}"


def _money_en(rng: Random) -> str:
    r = rng.random()
    if r < 0.5:
        return f"${1 + rng.random() * 98:.1f} million"
    if r < 0.8:
        return f"${10 + int(rng.random() * 890)},000"
    return f"${1 + rng.random() * 8:.2f} billion"


def _pct_en(rng: Random) -> str:
    return f"{2 + int(rng.random() * 78)} percent"


def _year(rng: Random) -> str:
    return str(1990 + int(rng.random() * 35))


def _old_year(rng: Random) -> str:
    return str(1520 + int(rng.random() * 470))


_MONTHS = _VOCABULARY_EN["_MONTHS"]
_WEEKDAYS = _VOCABULARY_EN["_WEEKDAYS"]

# ----------------------------------------------------------------------------------------------
# English vocabulary shared across domains

FIRST_NAMES = _VOCABULARY_EN["FIRST_NAMES"]
LAST_NAMES = _VOCABULARY_EN["LAST_NAMES"]
CITIES = _VOCABULARY_EN["CITIES"]
REGIONS = _VOCABULARY_EN["REGIONS"]
DEPARTMENTS = _VOCABULARY_EN["DEPARTMENTS"]
ORG_ADJ = _VOCABULARY_EN["ORG_ADJ"]
ORG_NOUN = _VOCABULARY_EN["ORG_NOUN"]
ORG_KIND = _VOCABULARY_EN["ORG_KIND"]
UNIVERSITIES = _VOCABULARY_EN["UNIVERSITIES"]
PROFESSIONS = _VOCABULARY_EN["PROFESSIONS"]
RESIDENT_ROLES = _VOCABULARY_EN["RESIDENT_ROLES"]
OFFICIAL_TITLES = _VOCABULARY_EN["OFFICIAL_TITLES"]


def person_name(rng: Random) -> str:
    return f"{_pick(rng, FIRST_NAMES)} {_pick(rng, LAST_NAMES)}"


def _org_name(rng: Random, city: str) -> str:
    r = rng.random()
    if r < 0.3:
        return f"the {city} City Council"
    if r < 0.5:
        return f"the Department of {_pick(rng, DEPARTMENTS)}"
    return f"the {_pick(rng, ORG_ADJ)} {_pick(rng, ORG_NOUN)} {_pick(rng, ORG_KIND)}"


def _university(rng: Random) -> str:
    return _pick(rng, UNIVERSITIES).replace("{c}", _pick(rng, CITIES))


COMMON_EN: Slots = {
    "first": FIRST_NAMES,
    "last": LAST_NAMES,
    "city": CITIES,
    "region": REGIONS,
    "month": _MONTHS,
    "weekday": _WEEKDAYS,
    "year": _year,
    "oldyear": _old_year,
    "money": _money_en,
    "pct": _pct_en,
    "n2": _int_between(2, 9),
    "n10": _int_between(10, 99),
    "n100": _int_between(100, 950),
    "n1000": _thousands(1200, 98000),
    "dec": _decimal(1.1, 9.8),
    "person": person_name,
    "univ": _university,
    "profession": PROFESSIONS,
    "role": RESIDENT_ROLES,
}


# ----------------------------------------------------------------------------------------------
# English news

NEWS_TOPICS: dict[str, dict[str, tuple[str, ...]]] = _NEWS_EN["NEWS_TOPICS"]

NEWS_SLOTS: Slots = {**COMMON_EN}

NEWS_LEAD = compile_all(_NEWS_EN["NEWS_LEAD"], NEWS_SLOTS)

NEWS_BODY = compile_all(_NEWS_EN["NEWS_BODY"], NEWS_SLOTS)

NEWS_QUOTE = compile_all(_NEWS_EN["NEWS_QUOTE"], NEWS_SLOTS)

NEWS_CLOSE = compile_all(_NEWS_EN["NEWS_CLOSE"], NEWS_SLOTS)


def _news_ctx(rng: Random) -> dict[str, Any]:
    topic = NEWS_TOPICS[_pick(rng, sorted(NEWS_TOPICS))]
    city = _pick(rng, CITIES)
    off_last = _pick(rng, LAST_NAMES)
    exp_last = _pick(rng, LAST_NAMES)
    res_last = _pick(rng, LAST_NAMES)
    ctx: dict[str, Any] = {
        "CITY": city,
        "REGION": _pick(rng, REGIONS),
        "DAY": _pick(rng, _WEEKDAYS),
        "ORG": _org_name(rng, city),
        "OFFICIAL": f"{_pick(rng, OFFICIAL_TITLES)} {_pick(rng, FIRST_NAMES)} {off_last}",
        "OFF_SHORT": off_last,
        "EXPERT": f"{_pick(rng, FIRST_NAMES)} {exp_last}",
        "EXP_SHORT": exp_last,
        "EXP_ROLE": _pick(rng, PROFESSIONS),
        "EXP_UNIV": _university(rng),
        "RESIDENT": f"{_pick(rng, FIRST_NAMES)} {res_last}",
        "RES_SHORT": res_last,
        "RES_ROLE": _pick(rng, RESIDENT_ROLES),
    }
    ctx.update(topic)
    return ctx


def _prose_blocks(rng: Random, lead: Sequence[Parts], body: Sequence[Parts], extra: Sequence[Parts],
                  close: Sequence[Parts], n_body: int, per_para: tuple[int, int]) -> list[Block]:
    """Paragraphs from distinct templates: lead first, extra (quotes) mixed in, a closing line."""
    k_extra = min(len(extra), 1 + int(rng.random() * 3))
    chosen = [body[i] for i in _sample(rng, len(body), min(n_body, len(body)))]
    chosen += [extra[i] for i in _sample(rng, len(extra), k_extra)]
    _shuffle(rng, chosen)
    first = [_pick(rng, lead)] if lead else []
    blocks: list[Block] = []
    para: list[Parts | str] = list(first)
    lo, hi = per_para
    target = lo + int(rng.random() * (hi - lo + 1))
    for parts in chosen:
        para.append(parts)
        if len(para) >= target:
            blocks.append(Block(para))
            para = []
            target = lo + int(rng.random() * (hi - lo + 1))
    if close:
        para.append(_pick(rng, close))
    if para:
        blocks.append(Block(para))
    return blocks


def gen_news_en(rng: Random) -> DocSpec:
    ctx = _news_ctx(rng)
    n_body = 6 + int(rng.random() * 14)
    blocks = _prose_blocks(rng, NEWS_LEAD, NEWS_BODY, NEWS_QUOTE, NEWS_CLOSE, n_body, (2, 4))
    return DocSpec(blocks, ctx, " ", None, None, "en", "news")


# ----------------------------------------------------------------------------------------------
# English encyclopedia

_SYL_ON = _ENCYCLOPEDIA_EN["_SYL_ON"]
_SYL_V = _ENCYCLOPEDIA_EN["_SYL_V"]
_SYL_CO = _ENCYCLOPEDIA_EN["_SYL_CO"]


_SYLLABLES = tuple(o + v + c for o in _SYL_ON for v in _SYL_V for c in _SYL_CO)


def _invented(rng: Random, syllables: int) -> str:
    """An invented proper name (thousands of syllables, so names rarely repeat)."""
    rnd = rng.random
    n = len(_SYLLABLES)
    s = "".join([_SYLLABLES[int(rnd() * n)] for _ in range(syllables)])
    return s[:1].upper() + s[1:]


ENC_REGIONS = _ENCYCLOPEDIA_EN["ENC_REGIONS"]
ENC_FIELDS = _ENCYCLOPEDIA_EN["ENC_FIELDS"]
ENC_ARTS = _ENCYCLOPEDIA_EN["ENC_ARTS"]
ENC_PERIODS = _ENCYCLOPEDIA_EN["ENC_PERIODS"]

ENC_TYPES: dict[str, dict[str, Any]] = _ENCYCLOPEDIA_EN["ENC_TYPES"]

ENC_SLOTS: Slots = {**COMMON_EN, "field": ENC_FIELDS, "art": ENC_ARTS, "period": ENC_PERIODS,
                    "encregion": ENC_REGIONS, "n3000": _thousands(120, 4800)}

ENC_INTRO: dict[str, tuple[Parts, ...]] = {
    "river": compile_all(_ENCYCLOPEDIA_EN["ENC_INTRO"]["river"], ENC_SLOTS),
    "mountain": compile_all(_ENCYCLOPEDIA_EN["ENC_INTRO"]["mountain"], ENC_SLOTS),
    "town": compile_all(_ENCYCLOPEDIA_EN["ENC_INTRO"]["town"], ENC_SLOTS),
    "species": compile_all(_ENCYCLOPEDIA_EN["ENC_INTRO"]["species"], ENC_SLOTS),
    "person": compile_all(_ENCYCLOPEDIA_EN["ENC_INTRO"]["person"], ENC_SLOTS),
    "mineral": compile_all(_ENCYCLOPEDIA_EN["ENC_INTRO"]["mineral"], ENC_SLOTS),
}

ENC_BODY: dict[str, tuple[Parts, ...]] = {
    "river": compile_all(_ENCYCLOPEDIA_EN["ENC_BODY"]["river"], ENC_SLOTS),
    "mountain": compile_all(_ENCYCLOPEDIA_EN["ENC_BODY"]["mountain"], ENC_SLOTS),
    "town": compile_all(_ENCYCLOPEDIA_EN["ENC_BODY"]["town"], ENC_SLOTS),
    "species": compile_all(_ENCYCLOPEDIA_EN["ENC_BODY"]["species"], ENC_SLOTS),
    "person": compile_all(_ENCYCLOPEDIA_EN["ENC_BODY"]["person"], ENC_SLOTS),
    "mineral": compile_all(_ENCYCLOPEDIA_EN["ENC_BODY"]["mineral"], ENC_SLOTS),
}

ENC_COMMON = compile_all(_ENCYCLOPEDIA_EN["ENC_COMMON"], ENC_SLOTS)

_GLOSS = _ENCYCLOPEDIA_EN["_GLOSS"]
_PRACTITIONERS = _ENCYCLOPEDIA_EN["_PRACTITIONERS"]
_EPITHETS = _ENCYCLOPEDIA_EN["_EPITHETS"]


def _enc_ctx(rng: Random) -> tuple[dict[str, Any], str, str]:
    kind = _pick(rng, sorted(ENC_TYPES))
    pools = ENC_TYPES[kind]
    location = _pick(rng, ENC_REGIONS)
    ctx: dict[str, Any] = dict(pools)
    ctx["KIND"] = _pick(rng, pools["KIND"])
    ctx["AKIND"] = ("an " if ctx["KIND"][0] in "aeiou" else "a ") + ctx["KIND"]
    ctx["LOCATION"] = location
    ctx["TOWN"] = _invented(rng, 2)
    ctx["PEAK"] = "Mount " + _invented(rng, 2)
    ctx["GLOSS"] = _pick(rng, _GLOSS)
    ctx["HONOUR"] = f"the {_pick(rng, _PRACTITIONERS)} {person_name(rng)}"
    ctx["DISCOVERER"] = person_name(rng)
    ctx["DISC_YEAR"] = str(1750 + int(rng.random() * 260))
    if kind == "river":
        name = f"{_invented(rng, 2)} River"
        ctx["OTHER"] = f"{_invented(rng, 2)} River"
        ctx["OTHER2"] = _invented(rng, 2)
        short = "the river"
    elif kind == "mountain":
        name = f"Mount {_invented(rng, 2)}"
        short = "the mountain"
    elif kind == "town":
        name = _invented(rng, 2 + int(rng.random() * 2))
        short = name
    elif kind == "species":
        genus = _invented(rng, 2).lower()
        genus = genus[:1].upper() + genus[1:] + _pick(rng, _ENCYCLOPEDIA_EN["genus_endings"])
        name = f"{genus} {_pick(rng, _EPITHETS)}"
        ctx["RELATIVE"] = f"{genus} {_pick(rng, _EPITHETS)}"
        short = "the species"
    elif kind == "person":
        first = _pick(rng, FIRST_NAMES)
        last = _invented(rng, 2 + int(rng.random() * 2))
        born = 1580 + int(rng.random() * 330)
        name = f"{first} {last}"
        ctx["BORN"] = str(born)
        ctx["DIED"] = str(born + 40 + int(rng.random() * 45))
        ctx["MIDYEAR"] = str(born + 25 + int(rng.random() * 15))
        ctx["SHORT"] = last
        short = last
    else:
        name = _invented(rng, 2).lower()
        name = name[:1].upper() + name[1:] + "ite"
        ctx["RELATIVE"] = _pick(rng, _ENCYCLOPEDIA_EN["mineral_relatives"])
        ctx["HARD"] = f"{2 + rng.random() * 6:.1f}"
        short = name
    ctx["NAME"] = name
    ctx["SHORTNAME"] = short if short[0].isupper() else name
    return ctx, kind, name


def gen_encyclopedia_en(rng: Random) -> DocSpec:
    ctx, kind, name = _enc_ctx(rng)
    n_body = 10 + int(rng.random() * 8)
    blocks = _prose_blocks(rng, ENC_INTRO[kind], ENC_BODY[kind] + ENC_COMMON, (), (), n_body, (2, 4))
    return DocSpec(blocks, ctx, " ", name, kind, "en", "encyclopedia")


# ----------------------------------------------------------------------------------------------
# English forum posts

FORUM_TOPICS: dict[str, dict[str, tuple[str, ...]]] = _FORUM_EN["FORUM_TOPICS"]

_HANDLE_A = _FORUM_EN["_HANDLE_A"]
_HANDLE_B = _FORUM_EN["_HANDLE_B"]


def _handle(rng: Random) -> str:
    return f"{_pick(rng, _HANDLE_A)}_{_pick(rng, _HANDLE_B)}{int(rng.random() * 100)}"


FORUM_SLOTS: Slots = {**COMMON_EN, "handle": _handle}

FORUM_OPEN = compile_all(_FORUM_EN["FORUM_OPEN"], FORUM_SLOTS)

FORUM_BODY = compile_all(_FORUM_EN["FORUM_BODY"], FORUM_SLOTS)

FORUM_CLOSE = compile_all(_FORUM_EN["FORUM_CLOSE"], FORUM_SLOTS)


def gen_forum_en(rng: Random) -> DocSpec:
    ctx: dict[str, Any] = dict(FORUM_TOPICS[_pick(rng, sorted(FORUM_TOPICS))])
    n_body = 8 + int(rng.random() * 9)
    blocks = _prose_blocks(rng, FORUM_OPEN, FORUM_BODY, (), FORUM_CLOSE, n_body, (2, 4))
    return DocSpec(blocks, ctx, " ", None, None, "en", "forum")


# ----------------------------------------------------------------------------------------------
# Code (Python and JavaScript snippets)

CODE_VERBS = _CODE["CODE_VERBS"]
CODE_NOUNS = _CODE["CODE_NOUNS"]
CODE_ATTRS = _CODE["CODE_ATTRS"]


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("ch", "sh", "s", "x")) else "s")


def _ident(rng: Random) -> str:
    return f"{_pick(rng, CODE_VERBS)}_{_plural(_pick(rng, CODE_NOUNS))}"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


CODE_SLOTS: Slots = {
    "n2": _int_between(2, 9),
    "n10": _int_between(10, 99),
    "n100": _int_between(100, 950),
    "dec": _decimal(0.1, 0.9, 2),
}

PY_HEADER = _CODE["PY_HEADER"]

PY_FUNCS = _CODE["PY_FUNCS"]

JS_HEADER = _CODE["JS_HEADER"]

JS_FUNCS = _CODE["JS_FUNCS"]

_CODE_WHY = _CODE["_CODE_WHY"]
_COMMENTS_EN = _CODE["_COMMENTS_EN"]


_CODE_ITEMS = _CODE["_CODE_ITEMS"]
_CODE_VARS = _CODE["_CODE_VARS"]


def _compile_code(groups: list[list[str]]) -> list[list[Template]]:
    return [[compile_template(line, CODE_SLOTS, False) for line in g] for g in groups]


_PY_HEADER_T = _compile_code(PY_HEADER)
_PY_FUNCS_T = _compile_code(PY_FUNCS)
_JS_HEADER_T = _compile_code(JS_HEADER)
_JS_FUNCS_T = _compile_code(JS_FUNCS)


def gen_code(rng: Random) -> DocSpec:
    js = rng.random() < 0.35
    noun = _pick(rng, CODE_NOUNS)
    ctx: dict[str, Any] = {
        "NOUN": noun,
        "ATTR": _pick(rng, CODE_ATTRS),
        "ATTR2": _pick(rng, CODE_ATTRS),
        "MODULE": f"{noun}_{_pick(rng, CODE_VERBS)}",
        "CLASS": f"{noun.capitalize()}{_pick(rng, ('Window', 'Buffer', 'Tracker', 'Ledger', 'Counter'))}",
    }
    header = _pick(rng, _JS_HEADER_T if js else _PY_HEADER_T)
    funcs = _JS_FUNCS_T if js else _PY_FUNCS_T
    raw = JS_FUNCS if js else PY_FUNCS
    k = min(len(funcs), 2 + int(rng.random() * 3))
    blocks = [Block(list(header))]
    for i in _sample(rng, len(funcs), k):
        fn = _ident(rng)
        bctx = {"FN": fn, "FNJS": _camel(fn), "ARG": _plural(_pick(rng, CODE_NOUNS)),
                "CAP": str(64 << int(rng.random() * 5)), "WHY": _CODE_WHY,
                "ITEM": _pick(rng, _CODE_ITEMS), "VAR": _pick(rng, _CODE_VARS)}
        lines: list[Parts | str] = list(funcs[i])
        if rng.random() < 0.4:
            last = raw[i][-2] if js else raw[i][-1]
            indent = last[: len(last) - len(last.lstrip())]
            mark = "//" if js else "#"
            lines.insert(len(lines) - (2 if js else 1), f"{indent}{mark} Note: {_pick(rng, _COMMENTS_EN)}.")
        blocks.append(Block(lines, bctx))
    return DocSpec(blocks, ctx, "\n", None, "javascript" if js else "python", "en", "code", cap=False)


# ----------------------------------------------------------------------------------------------
# Math: worked problems in prose with computed answers

MATH_SLOTS: Slots = {**COMMON_EN}
_MATH_OBJECTS = _MATH["_MATH_OBJECTS"]
_MATH_VEHICLES = _MATH["_MATH_VEHICLES"]

MATH_INTRO = compile_all(_MATH["MATH_INTRO"], MATH_SLOTS)


def _mp_speed(rng: Random) -> tuple[list[str], dict[str, str]]:
    speed = 20 + int(rng.random() * 80)
    hours = 2 + int(rng.random() * 5)
    dist = speed * hours
    return (list(_MATH["mp_speed"]), {
        "V": _pick(rng, _MATH_VEHICLES), "D": str(dist), "H": str(hours), "S": str(speed)})


def _mp_discount(rng: Random) -> tuple[list[str], dict[str, str]]:
    price = 20 + 5 * int(rng.random() * 36)
    pct = _pick(rng, (10, 15, 20, 25, 30, 40, 50))
    off = price * pct / 100
    new = price - off
    return (list(_MATH["mp_discount"]), {
        "P": str(price), "R": str(pct), "O": f"{off:g}", "N": f"{new:g}"})


def _mp_linear(rng: Random) -> tuple[list[str], dict[str, str]]:
    a = 2 + int(rng.random() * 8)
    x = 2 + int(rng.random() * 15)
    b = 1 + int(rng.random() * 30)
    c = a * x + b
    return (list(_MATH["mp_linear"]), {
        "A": str(a), "B": str(b), "C": str(c), "AX": str(a * x), "X": str(x)})


def _mp_rectangle(rng: Random) -> tuple[list[str], dict[str, str]]:
    w = 3 + int(rng.random() * 20)
    h = 3 + int(rng.random() * 20)
    return (list(_MATH["mp_rectangle"]), {
        "W": str(w), "H": str(h), "AR": str(w * h), "PE": str(2 * (w + h))})


def _mp_average(rng: Random) -> tuple[list[str], dict[str, str]]:
    k = 4 + int(rng.random() * 3)
    vals = [40 + int(rng.random() * 60) for _ in range(k)]
    total = sum(vals)
    return (list(_MATH["mp_average"]), {
        "VALS": ", ".join(map(str, vals[:-1])) + f" and {vals[-1]}", "K": str(k), "T": str(total),
        "M": f"{total / k:.2f}"})


def _mp_ratio(rng: Random) -> tuple[list[str], dict[str, str]]:
    a = 1 + int(rng.random() * 5)
    b = a + 1 + int(rng.random() * 4)
    unit = 3 + int(rng.random() * 20)
    total = (a + b) * unit
    return (list(_MATH["mp_ratio"]), {
        "P1": _pick(rng, FIRST_NAMES), "P2": _pick(rng, FIRST_NAMES), "T": str(total), "A": str(a),
        "B": str(b), "AB": str(a + b), "U": str(unit), "RA": str(a * unit), "RB": str(b * unit),
        "O": _pick(rng, _MATH_OBJECTS)})


def _mp_interest(rng: Random) -> tuple[list[str], dict[str, str]]:
    p = 500 * (1 + int(rng.random() * 20))
    r = _pick(rng, (2, 3, 4, 5, 6))
    t = 2 + int(rng.random() * 6)
    i = p * r * t / 100
    return (list(_MATH["mp_interest"]), {
        "P": str(p), "R": str(r), "T": str(t), "I": f"{i:g}", "B": f"{p + i:g}"})


def _mp_pythagoras(rng: Random) -> tuple[list[str], dict[str, str]]:
    a, b, c = _pick(rng, ((3, 4, 5), (5, 12, 13), (8, 15, 17), (7, 24, 25), (20, 21, 29), (9, 40, 41)))
    k = 1 + int(rng.random() * 4)
    return (list(_MATH["mp_pythagoras"]), {
        "A": str(a * k), "B": str(b * k), "A2": str((a * k) ** 2), "B2": str((b * k) ** 2),
        "C2": str((c * k) ** 2), "C": str(c * k)})


def _mp_work(rng: Random) -> tuple[list[str], dict[str, str]]:
    a, b = _pick(rng, ((3, 6), (4, 12), (6, 12), (10, 15), (12, 24), (6, 30), (20, 30), (5, 20)))
    together = a * b / (a + b)
    return (list(_MATH["mp_work"]), {
        "P1": _pick(rng, FIRST_NAMES), "P2": _pick(rng, FIRST_NAMES), "A": str(a), "B": str(b),
        "T": f"{together:g}"})


def _mp_probability(rng: Random) -> tuple[list[str], dict[str, str]]:
    red = 2 + int(rng.random() * 8)
    blue = 2 + int(rng.random() * 8)
    green = 1 + int(rng.random() * 6)
    total = red + blue + green
    return (list(_MATH["mp_probability"]), {
        "R": str(red), "B": str(blue), "G": str(green), "T": str(total), "NB": str(total - blue),
        "PR": f"{(total - blue) / total:.3f}"})


def _mp_sequence(rng: Random) -> tuple[list[str], dict[str, str]]:
    a = 1 + int(rng.random() * 20)
    d = 2 + int(rng.random() * 9)
    n = 10 + int(rng.random() * 40)
    return (list(_MATH["mp_sequence"]), {
        "A": str(a), "A2": str(a + d), "A3": str(a + 2 * d), "D": str(d), "N": str(n),
        "NM1": str(n - 1), "T": str(a + (n - 1) * d)})


def _mp_circle(rng: Random) -> tuple[list[str], dict[str, str]]:
    r = 2 + int(rng.random() * 18)
    return (list(_MATH["mp_circle"]), {
        "R": str(r), "R2": str(r * r), "AR": f"{3.14 * r * r:.2f}", "C": f"{2 * 3.14 * r:.2f}"})


def _mp_system(rng: Random) -> tuple[list[str], dict[str, str]]:
    y = 1 + int(rng.random() * 20)
    x = y + 1 + int(rng.random() * 20)
    return (list(_MATH["mp_system"]), {
        "S": str(x + y), "D": str(x - y), "S2": str(2 * x), "X": str(x), "Y": str(y)})


_NUM_WORDS = _MATH["_NUM_WORDS"]
_NUM_WORDS += tuple(f"twenty-{w}" for w in _NUM_WORDS[1:10]) + ("thirty",)

MATH_PROBLEMS: tuple[Callable[[Random], tuple[list[str], dict[str, str]]], ...] = (
    _mp_speed, _mp_discount, _mp_linear, _mp_rectangle, _mp_average, _mp_ratio, _mp_interest,
    _mp_pythagoras, _mp_work, _mp_probability, _mp_sequence, _mp_circle, _mp_system,
)
_MATH_COMPILED: dict[str, Parts] = {}


def _math_tpl(src: str) -> Parts:
    parts = _MATH_COMPILED.get(src)
    if parts is None:
        parts = _MATH_COMPILED[src] = compile_template(src, MATH_SLOTS)
    return parts


MATH_EXPLAIN = compile_all(_MATH["MATH_EXPLAIN"], MATH_SLOTS)

MATH_CLOSE = compile_all(_MATH["MATH_CLOSE"], MATH_SLOTS)


def gen_math(rng: Random) -> DocSpec:
    k = 3 + int(rng.random() * 4)
    blocks = [Block([_pick(rng, MATH_INTRO)])]
    explain = _sample(rng, len(MATH_EXPLAIN), min(len(MATH_EXPLAIN), 2 * k))
    for i, j in enumerate(_sample(rng, len(MATH_PROBLEMS), k)):
        srcs, nums = MATH_PROBLEMS[j](rng)
        first = f"[Problem|Example|Exercise] {_NUM_WORDS[i + 1]}. " + srcs[0]
        sents: list[Parts | str] = [_math_tpl(first), *(_math_tpl(s) for s in srcs[1:])]
        sents.insert(2, MATH_EXPLAIN[explain[2 * i]])
        if rng.random() < 0.6:
            sents.insert(len(sents) - 1, MATH_EXPLAIN[explain[2 * i + 1]])
        blocks.append(Block(sents, {**nums, **{f"W{k}": _NUM_WORDS[int(v)] for k, v in nums.items()
                                                  if v.isdigit() and int(v) < len(_NUM_WORDS)}}))
    if rng.random() < 0.7:
        blocks.append(Block([_pick(rng, MATH_CLOSE)]))
    return DocSpec(blocks, {}, " ", None, None, "en", "math")


# ----------------------------------------------------------------------------------------------
# Chinese vocabulary

ZH_CITIES = _VOCABULARY_ZH["ZH_CITIES"]
ZH_PROVINCES = _VOCABULARY_ZH["ZH_PROVINCES"]
ZH_DEPTS = _VOCABULARY_ZH["ZH_DEPTS"]
ZH_SURNAMES = tuple(_VOCABULARY_ZH["ZH_SURNAMES"])
ZH_GIVEN = _VOCABULARY_ZH["ZH_GIVEN"]
ZH_TITLES = _VOCABULARY_ZH["ZH_TITLES"]
ZH_EXPERT_ORGS = _VOCABULARY_ZH["ZH_EXPERT_ORGS"]
ZH_EXPERT_ROLES = _VOCABULARY_ZH["ZH_EXPERT_ROLES"]


def zh_name(rng: Random) -> str:
    return _pick(rng, ZH_SURNAMES) + _pick(rng, ZH_GIVEN)


def _zh_pct(rng: Random) -> str:
    return f"{1 + rng.random() * 28:.1f}%"


def _zh_date(rng: Random) -> str:
    return f"{1 + int(rng.random() * 12)}月{1 + int(rng.random() * 28)}日"


def _zh_money(rng: Random) -> str:
    r = rng.random()
    if r < 0.6:
        return f"{1 + rng.random() * 98:.1f}亿元"
    return f"{100 + int(rng.random() * 9800)}万元"


ZH_SLOTS: Slots = {
    "zcity": ZH_CITIES,
    "prov": ZH_PROVINCES,
    "pct": _zh_pct,
    "date": _zh_date,
    "money": _zh_money,
    "year": lambda rng: f"{1995 + int(rng.random() * 30)}年",
    "oldyear": lambda rng: f"{1500 + int(rng.random() * 480)}年",
    "n2": _int_between(2, 9),
    "n10": _int_between(10, 99),
    "n100": _int_between(100, 950),
    "n1000": _int_between(1200, 98000),
    "month": lambda rng: f"{1 + int(rng.random() * 12)}月",
    "person": zh_name,
    "period": _VOCABULARY_ZH["ZH_SLOTS"]["period"],
}

ZH_NEWS_TOPICS: dict[str, dict[str, tuple[str, ...]]] = _NEWS_ZH["ZH_NEWS_TOPICS"]

ZH_NEWS_LEAD = compile_all(_NEWS_ZH["ZH_NEWS_LEAD"], ZH_SLOTS)

ZH_NEWS_BODY = compile_all(_NEWS_ZH["ZH_NEWS_BODY"], ZH_SLOTS)

ZH_NEWS_QUOTE = compile_all(_NEWS_ZH["ZH_NEWS_QUOTE"], ZH_SLOTS)

ZH_NEWS_CLOSE = compile_all(_NEWS_ZH["ZH_NEWS_CLOSE"], ZH_SLOTS)


def _zh_news_ctx(rng: Random) -> dict[str, Any]:
    topic = ZH_NEWS_TOPICS[_pick(rng, sorted(ZH_NEWS_TOPICS))]
    off = zh_name(rng)
    exp = zh_name(rng)
    res = zh_name(rng)
    dept = _pick(rng, ZH_DEPTS)
    ctx: dict[str, Any] = {
        "CITY": _pick(rng, ZH_CITIES),
        "DEPT": dept,
        "DATE": _zh_date(rng),
        "PERIOD": _pick(rng, ZH_SLOTS["period"]),
        "OFFICIAL": f"市{dept}{_pick(rng, ZH_TITLES)}{off}",
        "OFF_SHORT": off,
        "EXPERT": f"{_pick(rng, ZH_EXPERT_ORGS)}{_pick(rng, ZH_EXPERT_ROLES)}{exp}",
        "EXP_SHORT": exp,
        "EXP_ORG": _pick(rng, ZH_EXPERT_ORGS),
        "RESIDENT": res,
        "RES_SHORT": res,
        "OBJ": _pick(rng, _VOCABULARY_ZH["news_aims"]),
    }
    ctx.update(topic)
    return ctx


def gen_news_zh(rng: Random) -> DocSpec:
    ctx = _zh_news_ctx(rng)
    n_body = 5 + int(rng.random() * 9)
    blocks = _prose_blocks(rng, ZH_NEWS_LEAD, ZH_NEWS_BODY, ZH_NEWS_QUOTE, ZH_NEWS_CLOSE, n_body, (2, 3))
    return DocSpec(blocks, ctx, "", None, None, "zh", "news")


# ----------------------------------------------------------------------------------------------
# Chinese encyclopedia

ZH_NAME_CHARS = tuple(_ENCYCLOPEDIA_ZH["ZH_NAME_CHARS"])
ZH_ENC_TYPES: dict[str, dict[str, Any]] = {
    "river": {
        "SUFFIX": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["river"]["SUFFIX"], "MW": "条",
        "KIND": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["river"]["KIND"],
        "FEATURE": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["river"]["FEATURE"],
        "USE": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["river"]["USE"],
        "SIZE": compile_all(_ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["river"]["SIZE"], ZH_SLOTS),
    },
    "mountain": {
        "SUFFIX": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["mountain"]["SUFFIX"], "MW": "座",
        "KIND": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["mountain"]["KIND"],
        "FEATURE": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["mountain"]["FEATURE"],
        "USE": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["mountain"]["USE"],
        "SIZE": compile_all(_ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["mountain"]["SIZE"], ZH_SLOTS),
    },
    "town": {
        "SUFFIX": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["town"]["SUFFIX"], "MW": "个",
        "KIND": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["town"]["KIND"],
        "FEATURE": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["town"]["FEATURE"],
        "USE": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["town"]["USE"],
        "SIZE": compile_all(_ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["town"]["SIZE"], ZH_SLOTS),
    },
    "lake": {
        "SUFFIX": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["lake"]["SUFFIX"], "MW": "个",
        "KIND": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["lake"]["KIND"],
        "FEATURE": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["lake"]["FEATURE"],
        "USE": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["lake"]["USE"],
        "SIZE": compile_all(_ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["lake"]["SIZE"], ZH_SLOTS),
    },
    "building": {
        "SUFFIX": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["building"]["SUFFIX"], "MW": "座",
        "KIND": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["building"]["KIND"],
        "FEATURE": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["building"]["FEATURE"],
        "USE": _ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["building"]["USE"],
        "SIZE": compile_all(_ENCYCLOPEDIA_ZH["ZH_ENC_TYPES"]["building"]["SIZE"], ZH_SLOTS),
    },
}

ZH_ENC_INTRO = compile_all(_ENCYCLOPEDIA_ZH["ZH_ENC_INTRO"], ZH_SLOTS)

ZH_ENC_BODY = compile_all(_ENCYCLOPEDIA_ZH["ZH_ENC_BODY"], ZH_SLOTS)

_ZH_BOOKS = _ENCYCLOPEDIA_ZH["_ZH_BOOKS"]
_ZH_LEGENDS = _ENCYCLOPEDIA_ZH["_ZH_LEGENDS"]
_ZH_THREATS = _ENCYCLOPEDIA_ZH["_ZH_THREATS"]
_ZH_FIELDS = _ENCYCLOPEDIA_ZH["_ZH_FIELDS"]
_ZH_ROLES = _ENCYCLOPEDIA_ZH["_ZH_ROLES"]
_ZH_NICKS = _ENCYCLOPEDIA_ZH["_ZH_NICKS"]


def gen_encyclopedia_zh(rng: Random) -> DocSpec:
    kind = _pick(rng, sorted(ZH_ENC_TYPES))
    pools = ZH_ENC_TYPES[kind]
    name = _pick(rng, ZH_NAME_CHARS) + _pick(rng, ZH_NAME_CHARS) + _pick(rng, pools["SUFFIX"])
    county = _pick(rng, ZH_NAME_CHARS) + _pick(rng, ZH_NAME_CHARS) + _pick(rng, ("县", "市", "区"))
    ctx: dict[str, Any] = {k: v for k, v in pools.items() if k not in ("SUFFIX", "SIZE")}
    ctx.update({
        "NAME": name,
        "KIND": _pick(rng, pools["KIND"]),
        "SIZE": render(_pick(rng, pools["SIZE"]), rng, {}),
        "PROV": _pick(rng, ZH_PROVINCES),
        "LOCAL": county + _pick(rng, _ENCYCLOPEDIA_ZH["county_parts"]),
        "LOCAL_SHORT": county,
        "OLDNAME": _pick(rng, ZH_NAME_CHARS) + _pick(rng, ZH_NAME_CHARS) + _pick(rng, pools["SUFFIX"]),
        "BOOK": county[:2] + _pick(rng, _ZH_BOOKS),
        "LEGEND": _pick(rng, _ZH_LEGENDS),
        "THREAT": _pick(rng, _ZH_THREATS),
        "FIELD": _pick(rng, _ZH_FIELDS),
        "ROLE": _pick(rng, _ZH_ROLES),
        "NICK": _pick(rng, _ZH_NICKS),
    })
    n_body = 6 + int(rng.random() * 7)
    blocks = _prose_blocks(rng, ZH_ENC_INTRO, ZH_ENC_BODY, (), (), n_body, (2, 3))
    return DocSpec(blocks, ctx, "", name, kind, "zh", "encyclopedia")


# ----------------------------------------------------------------------------------------------
# Chinese forum posts

ZH_FORUM_TOPICS: dict[str, dict[str, tuple[str, ...]]] = _FORUM_ZH["ZH_FORUM_TOPICS"]


_ZH_HANDLE_A = tuple("小大老阿")
_ZH_HANDLE_B = _FORUM_ZH["_ZH_HANDLE_B"]


def _zh_handle(rng: Random) -> str:
    return f"{_pick(rng, _ZH_HANDLE_A)}{_pick(rng, _ZH_HANDLE_B)}{_pick(rng, ZH_GIVEN)}"


ZH_FORUM_SLOTS: Slots = {**ZH_SLOTS, "handle": _zh_handle}

ZH_FORUM_OPEN = compile_all(_FORUM_ZH["ZH_FORUM_OPEN"], ZH_FORUM_SLOTS)

ZH_FORUM_BODY = compile_all(_FORUM_ZH["ZH_FORUM_BODY"], ZH_FORUM_SLOTS)

def gen_forum_zh(rng: Random) -> DocSpec:
    ctx: dict[str, Any] = dict(ZH_FORUM_TOPICS[_pick(rng, sorted(ZH_FORUM_TOPICS))])
    n_body = 6 + int(rng.random() * 6)
    blocks = _prose_blocks(rng, ZH_FORUM_OPEN, ZH_FORUM_BODY, (), (), n_body, (2, 3))
    return DocSpec(blocks, ctx, "", None, None, "zh", "forum")


# ----------------------------------------------------------------------------------------------
# Low quality: sales copy, clickbait, listicles, keyword stuffing, fragments (domain flavoured)

LOW_SLOTS: Slots = {
    **COMMON_EN,
    "hype": _LOW_QUALITY["LOW_SLOTS"]["hype"],
    "cta": _LOW_QUALITY["LOW_SLOTS"]["cta"],
    "off": _LOW_QUALITY["LOW_SLOTS"]["off"],
    "emph": _LOW_QUALITY["LOW_SLOTS"]["emph"],
    "brand": lambda rng: _site(rng),
}

LOW_TOPIC_WORDS: dict[str, dict[str, tuple[str, ...]]] = _LOW_QUALITY["LOW_TOPIC_WORDS"]

LOW_SALESY = compile_all(_LOW_QUALITY["LOW_SALESY"], LOW_SLOTS)

LOW_CLICKBAIT = compile_all(_LOW_QUALITY["LOW_CLICKBAIT"], LOW_SLOTS)

LOW_LIST_TITLE = compile_all(_LOW_QUALITY["LOW_LIST_TITLE"], LOW_SLOTS)
LOW_LIST_ITEM = compile_all(_LOW_QUALITY["LOW_LIST_ITEM"], LOW_SLOTS)
_LIST_NUMS = tuple(f"{i}. " for i in range(1, 21))

LOW_FRAGMENTS = compile_all(_LOW_QUALITY["LOW_FRAGMENTS"], LOW_SLOTS)
_KW_SUFFIX = _LOW_QUALITY["_KW_SUFFIX"]


def _promo_code(rng: Random) -> str:
    return "".join(_pick(rng, "ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(4)) + str(10 + int(rng.random() * 90))


def gen_low_en(rng: Random, domain: str) -> DocSpec:
    ctx: dict[str, Any] = {"KW": LOW_TOPIC_WORDS[domain]["KW"], "CODE": _promo_code(rng)}
    r = rng.random()
    if r < 0.55:
        clickbait = r < 0.2
        subtype = "clickbait" if clickbait else "salesy"
        if clickbait:
            chosen = [LOW_CLICKBAIT[i] for i in _sample(rng, len(LOW_CLICKBAIT), 4 + int(rng.random() * 4))]
            chosen += [LOW_SALESY[i] for i in _sample(rng, len(LOW_SALESY), 3)]
        else:
            chosen = [LOW_SALESY[i] for i in _sample(rng, len(LOW_SALESY), 6 + int(rng.random() * 7))]
        _shuffle(rng, chosen)
        blocks = [Block(chosen[i:i + 3]) for i in range(0, len(chosen), 3)]
        return DocSpec(blocks, ctx, " ", None, subtype, "en", domain)
    if r < 0.75:
        n = 5 + int(rng.random() * 8)
        ctx["NUM"] = str(n)
        items: list[Parts | str] = [(_LIST_NUMS[i],) + _pick(rng, LOW_LIST_ITEM) for i in range(n)]
        outro = [LOW_SALESY[i] for i in _sample(rng, len(LOW_SALESY), 2)]
        blocks = [Block([_pick(rng, LOW_LIST_TITLE)]), Block(items), Block(outro)]
        return DocSpec(blocks, ctx, "\n", None, "listicle", "en", domain)
    if r < 0.88:
        kws = ctx["KW"]
        lines: list[Parts | str] = []
        for _ in range(4 + int(rng.random() * 5)):
            words = [_pick(rng, kws) + _pick(rng, _KW_SUFFIX) for _ in range(5 + int(rng.random() * 6))]
            lines.append(" ".join(words))
        return DocSpec([Block(lines)], ctx, "\n", None, "keyword_stuffed", "en", domain)
    frags = [LOW_FRAGMENTS[i] for i in _sample(rng, len(LOW_FRAGMENTS), 6 + int(rng.random() * 8))]
    return DocSpec([Block(frags)], ctx, "\n", None, "fragmentary", "en", domain)


ZH_LOW_SLOTS: Slots = {
    **ZH_SLOTS,
    "hype": _LOW_QUALITY["ZH_LOW_SLOTS"]["hype"],
    "cta": _LOW_QUALITY["ZH_LOW_SLOTS"]["cta"],
    "emph": _LOW_QUALITY["ZH_LOW_SLOTS"]["emph"],
}
ZH_LOW_KW: dict[str, tuple[str, ...]] = _LOW_QUALITY["ZH_LOW_KW"]

ZH_LOW_SENT = compile_all(_LOW_QUALITY["ZH_LOW_SENT"], ZH_LOW_SLOTS)


def gen_low_zh(rng: Random, domain: str) -> DocSpec:
    ctx: dict[str, Any] = {"KW": ZH_LOW_KW[domain]}
    k = 4 + int(rng.random() * 4)
    chosen = [ZH_LOW_SENT[i] for i in _sample(rng, len(ZH_LOW_SENT), min(k, len(ZH_LOW_SENT)))]
    if rng.random() < 0.5:
        return DocSpec([Block(chosen[i:i + 2]) for i in range(0, len(chosen), 2)], ctx, "", None, "salesy",
                       "zh", domain)
    return DocSpec([Block(chosen)], ctx, "\n", None, "listicle", "zh", domain)


# ----------------------------------------------------------------------------------------------
# Spam and boilerplate pages (what the heuristic filters must remove) and very short pages

_LOREM = _SPAM["_LOREM"]
SPAM_COOKIE = _SPAM["SPAM_COOKIE"]
SPAM_JS = _SPAM["SPAM_JS"]
SPAM_NAV = _SPAM["SPAM_NAV"]
SPAM_HASHTAGS = _SPAM["SPAM_HASHTAGS"]
ZH_SPAM_LINES = _SPAM["ZH_SPAM_LINES"]
ZH_SPAM_NAV = _SPAM["ZH_SPAM_NAV"]


def _site(rng: Random) -> str:
    return (f"{_pick(rng, ORG_ADJ)}{_pick(rng, ORG_NOUN)}"
            f"{_pick(rng, _SPAM['site_suffixes'])}")


def _fill(line: str, rng: Random, site: str, kw: str) -> str:
    """Per-page details in boilerplate lines, so two spam pages are not near-copies of each other."""
    return (line.replace("SITE", site).replace("KW", kw).replace("CITY", _pick(rng, CITIES))
            .replace("NUM", str(10 + int(rng.random() * 990)))
            .replace("DATE", f"{_pick(rng, _MONTHS)} {1 + int(rng.random() * 28)}"))


def gen_spam_en(rng: Random, domain: str) -> DocSpec:
    r = rng.random()
    site = _site(rng)
    lines: list[str] = []
    kw = _pick(rng, LOW_TOPIC_WORDS[domain]["KW"])
    if r < 0.18:
        subtype = "cookie_notice"
        lines.append(f"{site} | {_pick(rng, SPAM_NAV)} | {_pick(rng, SPAM_NAV)}")
        lines += [_fill(SPAM_COOKIE[i], rng, site, kw)
                  for i in _sample(rng, len(SPAM_COOKIE), 5 + int(rng.random() * 5))]
        lines.append(f"Copyright {_year(rng)} {site}. All rights reserved.")
    elif r < 0.32:
        subtype = "javascript_notice"
        lines.append(f"{site} {_pick(rng, SPAM_NAV)}")
        lines += [_fill(SPAM_JS[i], rng, site, kw) for i in _sample(rng, len(SPAM_JS), 3 + int(rng.random() * 4))]
        lines += [_pick(rng, SPAM_NAV) for _ in range(3)]
    elif r < 0.46:
        subtype = "lorem_ipsum"
        for _ in range(2 + int(rng.random() * 3)):
            words = [_pick(rng, _LOREM) for _ in range(25 + int(rng.random() * 30))]
            s = " ".join(words)
            lines.append(s[:1].upper() + s[1:] + ".")
        lines[0] = "Lorem ipsum dolor sit amet, " + lines[0][:1].lower() + lines[0][1:]
    elif r < 0.62:
        subtype = "repeated_lines"
        promo = f"{_pick(rng, LOW_SLOTS['cta'])} for {kw} with {_pick(rng, LOW_SLOTS['off'])} at {site}!"
        other = f"Visit {site} for {kw} in {_pick(rng, CITIES)}."
        lines = [promo] * (6 + int(rng.random() * 10)) + [other] * (2 + int(rng.random() * 3))
    elif r < 0.74:
        subtype = "bullet_list"
        bullet = _pick(rng, ("•", "-", "*"))
        lines = [f"{bullet} {kw} {_pick(rng, SPAM_NAV).lower()} {int(rng.random() * 1000)}"
                 for _ in range(8 + int(rng.random() * 10))]
    elif r < 0.87:
        subtype = "symbol_heavy"
        for _ in range(4 + int(rng.random() * 5)):
            tags = " ".join(_pick(rng, SPAM_HASHTAGS) for _ in range(6 + int(rng.random() * 6)))
            lines.append(f"{tags} #{kw.replace(' ', '')} ### {site} ###")
    else:
        subtype = "ellipsis_lines"
        for _ in range(6 + int(rng.random() * 6)):
            lines.append(f"{_pick(rng, ('Read more', 'Continue reading', 'Click to see', 'Loading', 'More'))} "
                         f"{kw} {_pick(rng, CITIES)}...")
    return DocSpec([Block(list(lines))], {}, "\n", None, subtype, "en", domain)


def gen_spam_zh(rng: Random, domain: str) -> DocSpec:
    r = rng.random()
    kw = _pick(rng, ZH_LOW_KW[domain])
    wx = f"{_pick(rng, ('vx', 'wx', 'V', 'VX'))}{int(rng.random() * 1e8):08d}"
    if r < 0.5:
        subtype = "repeated_lines"
        line = f"{_pick(rng, ZH_SPAM_LINES)}，{kw}请加微信{wx}"
        lines = [line] * (6 + int(rng.random() * 8)) + [_pick(rng, ZH_SPAM_LINES) for _ in range(2)]
    elif r < 0.75:
        subtype = "symbol_heavy"
        lines = [" ".join(f"#{_pick(rng, ZH_SPAM_LINES)}#" for _ in range(4)) + f" #{kw}# ###"
                 for _ in range(4 + int(rng.random() * 4))]
    else:
        subtype = "nav_ads"
        lines = [" | ".join(_pick(rng, ZH_SPAM_NAV) for _ in range(5))]
        lines += [f"{_pick(rng, ZH_SPAM_LINES)}……" for _ in range(5 + int(rng.random() * 5))]
        lines.append(f"免费{kw}，加微信{wx}")
    return DocSpec([Block(list(lines))], {}, "\n", None, subtype, "zh", domain)


SHORT_EN = compile_all(_SHORT["SHORT_EN"], LOW_SLOTS)
SHORT_ZH = compile_all(_SHORT["SHORT_ZH"], ZH_LOW_SLOTS)


def gen_short(rng: Random, lang: str, domain: str) -> DocSpec:
    pool = SHORT_ZH if lang == "zh" else SHORT_EN
    return DocSpec([Block([_pick(rng, pool)])], {}, " ", None, None, lang, domain)


# ----------------------------------------------------------------------------------------------
# dispatch

_HIGH: dict[tuple[str, str], Callable[[Random], DocSpec]] = {
    ("en", "news"): gen_news_en,
    ("en", "encyclopedia"): gen_encyclopedia_en,
    ("en", "forum"): gen_forum_en,
    ("en", "code"): gen_code,
    ("en", "math"): gen_math,
    ("zh", "news"): gen_news_zh,
    ("zh", "encyclopedia"): gen_encyclopedia_zh,
    ("zh", "forum"): gen_forum_zh,
}


def doc_spec(lang: str, domain: str, quality: str, rng: Random) -> DocSpec:
    """Decide a document's structure; `realize`/`realize_units` then draw its words."""
    if quality == "high":
        return _HIGH[(lang, domain)](rng)
    if quality == "low":
        return gen_low_zh(rng, domain) if lang == "zh" else gen_low_en(rng, domain)
    if quality == "spam":
        return gen_spam_zh(rng, domain) if lang == "zh" else gen_spam_en(rng, domain)
    if quality == "short":
        return gen_short(rng, lang, domain)
    raise ValueError(f"unknown quality {quality!r}")


def generate(lang: str, domain: str, quality: str, seed: int, rng: Random | None = None) -> Doc:
    """The document for (lang, domain, quality, seed): the same inputs always give the same text.

    Pass `rng` (a fresh `Random(seed)`) to keep drawing from it afterwards (e.g. for the URL).
    """
    rng = Random(seed) if rng is None else rng
    return realize(doc_spec(lang, domain, quality, rng), rng)


def generate_units(lang: str, domain: str, quality: str, seed: int) -> UnitDoc:
    """The same document as `generate`, as editable units (for near-duplicates)."""
    rng = Random(seed)
    return realize_units(doc_spec(lang, domain, quality, rng), rng)


# ----------------------------------------------------------------------------------------------
# near-duplicates and exact-duplicate variants

_CLAUSES: dict[tuple[str, str], tuple[str, ...]] = {
    (key.split("/")[0], key.split("/")[1]): clauses for key, clauses in _NEAR_DUP["_CLAUSES"].items()
}  # "lang/domain" keys in the data file
_CODE_COMMENTS = _NEAR_DUP["_CODE_COMMENTS"]


@dataclass
class NearDup:
    text: str
    jaccard: float
    ops: dict[str, int]


def make_near_dup(doc: UnitDoc, target: float, rng: Random, orig_text: str | None = None,
                  tol: float = 0.01, max_rounds: int = 60) -> NearDup:
    """Edit a copy of `doc` until its shingle Jaccard to the original falls to about `target`.

    Edits are slot re-draws (word substitutions), appended clauses (insertions), deleted and
    swapped sentences; code gets re-drawn values and inserted or deleted lines. Each edit's cost
    (shingles it destroys) is estimated, big edits are only used while much remains to destroy,
    and the Jaccard is measured after each batch, so the result lands just below the target.
    The result always differs from the original (Jaccard < 1), so it is never an exact duplicate.
    """
    orig = doc.render() if orig_text is None else orig_text
    a = shingle_set(orig)
    n_a = max(1, len(a))
    sents = [[list(u) for u in s] for s in doc.sentences]
    order = [list(b) for b in doc.order]
    work = UnitDoc(sents, order, doc.sep, doc.title, doc.subtype, doc.lang, doc.domain, doc.cap)
    subs = [(i, j) for i, s in enumerate(sents) for j, u in enumerate(s) if u[1] is not None]
    code = doc.domain == "code"
    zh = doc.lang == "zh"
    clauses = _CLAUSES.get((doc.lang, doc.domain), _CLAUSES[("en", "forum")])
    comment_mark = "//" if doc.subtype == "javascript" else "#"
    ops = {"sub": 0, "ins": 0, "del": 0, "swap": 0}
    p_sub = (0.55 if code else 0.6) * min(1.0, len(subs) / 20)  # few slots: rely on other edits

    def size(i: int) -> int:
        t = "".join(u[0] for u in sents[i])
        return len(t) if zh else len(t.split())

    def sub() -> int:
        for _ in range(4):
            i, j = subs[int(rng.random() * len(subs))]
            unit = sents[i][j]
            new = draw(unit[1], rng)
            if new != unit[0]:
                unit[0] = new
                ops["sub"] += 1
                return 4 + (len(new) if zh else len(new.split()))
        return 1

    def insert() -> int:
        if code:
            b = _pick(rng, order)
            pos = 1 + int(rng.random() * (len(b) - 1)) if len(b) > 1 else len(b)
            nxt = "".join(u[0] for u in sents[b[pos]]) if pos < len(b) else ""
            indent = nxt[: len(nxt) - len(nxt.lstrip())] or "    "
            sents.append([[f"{indent}{comment_mark} {_pick(rng, _CODE_COMMENTS)}", None]])
            b.insert(pos, len(sents) - 1)
        else:
            s = sents[_pick(rng, _pick(rng, [b for b in order if b]))]
            s.insert(len(s) - 1 if len(s) > 1 else len(s), [("\uff0c" if zh else ", ") + _pick(rng, clauses), None])
        ops["ins"] += 1
        return 5

    def one_op(budget: float) -> int:
        """Apply one edit no bigger than the budget allows (a substitution always fits)."""
        r = rng.random()
        if subs and (r < p_sub or (budget < 6 and len(subs) >= 5)):
            return sub()
        blocks = [b for b in order if len(b) >= (3 if code else 2)]
        r = rng.random()
        if r < 0.55 or not blocks or budget < 14:
            return insert()
        b = _pick(rng, blocks)
        if not code and (r < 0.8 or sum(len(x) for x in order) <= 6):
            k = int(rng.random() * (len(b) - 1))
            b[k], b[k + 1] = b[k + 1], b[k]
            ops["swap"] += 1
            return 12
        k = (1 if code else 0) + int(rng.random() * (len(b) - (1 if code else 0)))
        cost = size(b[k]) + 4
        if cost > budget:
            return sub() if subs else insert()
        del b[k]
        ops["del"] += 1
        return cost

    target = min(max(target, 0.0), 0.999)
    need = n_a * (1 - target) / (1 + target)  # shingles of the original that must disappear
    remaining = need
    text = orig
    j = 1.0
    spent_total = 0.0
    ratio = 1.0  # shingles actually destroyed per unit of estimated cost, learnt as we go
    for _ in range(max_rounds):
        est = 0.85 * remaining / ratio
        spent = 0
        while spent < est or spent == 0:
            spent += one_op(est - spent)
        spent_total += spent
        text = work.render()
        j = _jaccard_sets(a, shingle_set(text))
        if j <= target + tol and j < 1.0:
            break
        gone = n_a * (1 - j) / (1 + j)
        ratio = min(max(gone / spent_total, 0.45), 1.5)
        remaining = max(need - gone, 1.0)
    return NearDup(text, j, ops)


def exact_variant(text: str, kind: str, rng: Random) -> tuple[str, str]:
    """A copy that exact dedup must still match (same lower-cased, whitespace-collapsed text).

    Returns (text, kind actually used): "identical", "whitespace" or "case" (case falls back to
    whitespace when lower-casing changes nothing, e.g. Chinese text).
    """
    if kind == "case":
        low = text.lower()
        if low != text:
            return low, "case"
        kind = "whitespace"
    if kind != "whitespace":
        return text, "identical"
    lines = text.split("\n")
    r = rng.random()
    if r < 0.35:
        out = "\n".join(line + (" " * (1 + int(rng.random() * 3)) if line else "") for line in lines)
    elif r < 0.65 and " " in text:
        out = text.replace(" ", "  ", 1 + int(rng.random() * 20))
    elif r < 0.85:
        out = text.replace("\n\n", "\n\n\n")
        if out == text:
            out = text + "\n"
    else:
        out = "\n" + text + " \n"
    if out == text:
        out = text + "\n"
    return out, "whitespace"


# ----------------------------------------------------------------------------------------------
# URLs

_SITE_WORDS = _URLS["_SITE_WORDS"]
_ZH_PINYIN = _URLS["_ZH_PINYIN"]
_SLUG_WORDS = _URLS["_SLUG_WORDS"]


def make_url(source: str, lang: str, domain: str, quality: str, title: str | None, rng: Random) -> str:
    n = int(rng.random() * 900000) + 100000
    if source == "web":
        if quality in ("low", "spam"):
            site = f"{_site(rng).lower()}.{_pick(rng, ('biz', 'info', 'top', 'xyz', 'shop'))}"
            return f"https://{site}/p/{n}"
        if lang == "zh":
            return (f"https://www.{_pick(rng, _ZH_PINYIN)}{_pick(rng, ('ribao', 'wanbao', 'news', 'xinwen'))}"
                    f".com.cn/{_pick(rng, ('xw', 'sh', 'jj', 'bd'))}/{_year(rng)}/{n}.html")
        slug = "-".join(_pick(rng, _SLUG_WORDS) for _ in range(3 + int(rng.random() * 3)))
        return (f"https://www.{_pick(rng, CITIES).lower()}{_pick(rng, _SITE_WORDS)}.com/"
                f"{_pick(rng, ('news', 'local', 'politics', 'business'))}/{_year(rng)}/{slug}-{n}")
    if source == "forum":
        if lang == "zh":
            return f"https://bbs.{_pick(rng, _ZH_PINYIN)}.net/thread-{n}-1-1.html"
        return f"https://forum.{_pick(rng, _HANDLE_B)}{_pick(rng, ('hub', 'talk', 'board'))}.org/t/{n}"
    if source == "encyclopedia":
        sub = "zh" if lang == "zh" else "en"
        return f"https://{sub}.openwiki.org/wiki/{(title or str(n)).replace(' ', '_')}"
    if source == "code":
        user = _pick(rng, _HANDLE_A) + _pick(rng, _HANDLE_B)
        return f"https://git.example.dev/{user}/{_pick(rng, CODE_NOUNS)}-tools/blob/main/src/m{n}"
    return f"https://example.org/{source}/{n}"
