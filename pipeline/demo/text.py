"""Text generator for the demo corpus: word lists, sentence templates and document builders.

Everything is written here (no downloads) and driven by an explicit `random.Random`, so one seed
always yields the same document. Templates are compiled once into tuples of parts:

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


class Template(tuple):  # type: ignore[type-arg]
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
    exec(src, ns)  # noqa: S102 - code generated from our own templates only
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

    sentences: list[Parts | str]
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
                     if type(s) is Template else _cap(s if type(s) is str else render(s, rng, ctx))
                     for s in b.sentences]
        else:
            sents = [s.fast(rng, rnd, ctx) if type(s) is Template else s if type(s) is str else render(s, rng, ctx)
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
            sentences.append([[s, None]] if type(s) is str else render_units(s, rng, ctx))
        order.append(idx)
    return UnitDoc(sentences, order, spec.sep, spec.title, spec.subtype, spec.lang, spec.domain, spec.cap)


# ----------------------------------------------------------------------------------------------
# helpers for word lists and numbers


def _w(s: str) -> tuple[str, ...]:
    """A `|`-separated list (entries may contain spaces); newlines are ignored."""
    return tuple(x.strip() for x in s.replace("\n", " ").split("|") if x.strip())


def _ws(s: str) -> tuple[str, ...]:
    """A whitespace-separated list of single words."""
    return tuple(s.split())


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


_MONTHS = _ws("January February March April May June July August September October November December")
_WEEKDAYS = _ws("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")

# ----------------------------------------------------------------------------------------------
# English vocabulary shared across domains

FIRST_NAMES = _ws("""
Aaron Abigail Adrian Aisha Alan Alejandro Alice Amara Amir Ana Andrew Anita Arjun Ava Beatrice
Benjamin Bianca Boris Brian Camila Carlos Caroline Chloe Claire Colin Daniel Daria David Deborah
Diego Dmitri Eleanor Elena Elias Emeka Emily Emma Esther Ethan Fatima Felix Fiona Francesca
Gabriel Grace Graham Hana Hannah Harold Hassan Helen Hugo Ibrahim Ines Irene Isaac Ivan Jack
James Jasmine Javier Joanna Jonah Jorge Julia Kai Karen Kenji Kofi Laila Laura Leo Liam Lina
Lucas Lucia Mahmoud Malik Marco Margaret Maria Martin Maya Mei Michael Miguel Mira Nadia Naomi
Nathan Nikhil Nina Noah Oliver Olga Omar Oscar Patrick Paul Pedro Peter Priya Rachel Rafael
Rahul Rebecca Robert Rosa Ruth Samuel Sandra Sara Sean Simon Sofia Sophie Stefan Susan Tariq
Teresa Thomas Tobias Uma Victor Vikram Walter William Yara Yusuf Zainab Zoe Agnes Bruno Cecilia
Dennis Edith Frank Gloria Henrik Ingrid Jurgen Klara Lars Magnus Nora Otto Petra Quentin Rupert
""")
LAST_NAMES = _ws("""
Abbott Adeyemi Alvarez Anders Baker Banerjee Barnes Bauer Becker Bell Bennett Berg Bishop Blake
Brennan Brooks Campbell Carter Castillo Chandra Chang Clarke Coleman Collins Cooper Costa Crawford
Cruz Dalton Das Davies Delgado Dixon Doyle Duarte Edwards Ellis Evans Farrell Fernandez Fischer
Fleming Foster Fraser Garcia Gill Gordon Grant Gray Gupta Hall Hansen Harper Hayes Henderson
Herrera Hoffman Holland Howard Hughes Hussain Iyer Jansen Jensen Johnson Kaplan Kaur Keller Kelly
Kennedy Khan Kimura Klein Kowalski Kumar Lambert Larsen Lawson Lindqvist Lopez MacLeod Mahoney
Marsh Martins Mason Matsuda Mendoza Meyer Mitchell Molina Moreau Morgan Murphy Nakamura Navarro
Nguyen Nielsen Novak Nowak Obi Okafor Oliveira Olsen Ortiz Osei Owens Palmer Park Patel Pereira
Perez Petrov Pham Quinn Ramirez Reyes Richter Rivera Rossi Russo Sato Schmidt Schneider Shah
Silva Singh Sokolov Suarez Sullivan Tanaka Taylor Torres Turner Vasquez Vogel Walsh Ward Weber
Wells Wong Yamamoto Young Zhang Zimmerman Achterberg Boateng Carvalho Dimitrov Eriksen Fontaine
Galloway Haddad Ivanova Jovanovic Kaminski Lefebvre Mwangi Nakashima Oyelaran Pellegrini Rahman
""")
CITIES = _ws("""
Aberdeen Albany Auckland Austin Ballarat Belfast Birmingham Boise Bristol Brisbane Calgary Cardiff
Charleston Cork Dayton Denver Dundee Dunedin Durban Edmonton Exeter Fresno Galway Geelong Glasgow
Halifax Hamilton Hobart Inverness Kingston Knoxville Leeds Leicester Lincoln Liverpool Madison
Manchester Memphis Mobile Montpelier Nashville Newcastle Norwich Nottingham Oakland Omaha Ottawa
Perth Plymouth Portland Preston Raleigh Reno Richmond Rochester Sacramento Salem Savannah Sheffield
Spokane Stockton Sudbury Swansea Tacoma Tampa Toledo Townsville Tucson Tulsa Vancouver Victoria
Waterford Wellington Wichita Winnipeg Worcester York Akron Bangor Bendigo Boulder Cambridge Derby
Duluth Eugene Fargo Gloucester Harrisburg Ipswich Kilkenny Lansing Limerick Lowell Mackay Moncton
Napier Nelson Oxford Peoria Regina Saskatoon Shrewsbury Stirling Sunderland Syracuse Taunton
Timaru Wollongong Yakima Youngstown Bathurst Carlisle Darwin Gisborne Hereford Kendal Lismore
""")
REGIONS = _w("""the northern district|the river valley|the coastal suburbs|the eastern wards|the old town|
the industrial belt|the western hills|the harbour area|the university quarter|the outer suburbs|
the southern farmland|the lakeside towns|the inner city|the market district|the airport corridor""")
DEPARTMENTS = _ws("Transport Education Housing Environment Health Finance Agriculture Energy Justice "
                  "Labour Planning Water Culture Infrastructure Trade")
ORG_ADJ = _ws("Northern Southern Eastern Western Central Coastal Metropolitan Regional Harbourside "
              "Valley Highland Lakeside Riverside Capital Tri-County Greater")
ORG_NOUN = _ws("Transit Water Health Housing Energy Ports Parks Schools Roads Rail Airports Libraries "
               "Fisheries Forestry Planning")
ORG_KIND = _ws("Authority Board Commission Agency Trust Council Partnership Service")
UNIVERSITIES = _w("""the University of {c}|{c} Polytechnic|{c} Institute of Technology|
the {c} School of Economics|{c} Metropolitan University|the {c} Policy Centre""")
PROFESSIONS = _w("""an economist|a transport planner|a public health researcher|a housing analyst|
a historian|an engineer|a political scientist|a climate researcher|an education consultant|
a labour lawyer|a data analyst|a geographer|an urban designer|a sociologist""")
RESIDENT_ROLES = _w("""a retired teacher|a nurse|a shop owner|a father of three|
a delivery driver|a student|a local farmer|a bus driver|a pharmacist|a volunteer firefighter|
a café owner|a primary school teacher|a carpenter|a software developer|a community organiser""")
OFFICIAL_TITLES = _w("""Mayor|Councillor|Deputy Mayor|Commissioner|Director|Minister|Chief Executive|
Superintendent|Chair|Senator|Representative""")


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

NEWS_TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "transport": {
        "PROJECT": _w("""a new light rail line|the bus rapid transit corridor|the ring road extension|
            a protected cycle lane network|the central station upgrade|the harbour bridge replacement|
            a late-night ferry service|the tram extension to the suburbs|a park-and-ride scheme"""),
        "ISSUE": _w("""traffic congestion|late-running trains|rising fares|crumbling road surfaces|
            long commute times|pedestrian safety near schools|overcrowded buses|a shortage of drivers"""),
        "GROUP": _w("""commuters|bus drivers|cyclists|rail workers|taxi operators|freight companies|
            shift workers|daily passengers|wheelchair users"""),
        "PLACE": _w("""the central station|the northern interchange|the airport road|the eastern depot|
            the main bus terminal|the riverside junction|the old goods yard"""),
        "THING": _w("""ticket machines|signal equipment|electric buses|level crossings|timetables|
            platform lifts|traffic lights|charging points for buses"""),
    },
    "housing": {
        "PROJECT": _w("""a social housing programme|the redevelopment of the old brewery site|
            a scheme to convert empty offices into flats|the estate regeneration plan|
            a first-home buyer grant|a rent stabilisation policy|the new planning code"""),
        "ISSUE": _w("""the shortage of affordable homes|rising rents|long waiting lists for council homes|
            damp and mould in older flats|overcrowding|empty properties|homelessness"""),
        "GROUP": _w("""renters|first-time buyers|landlords|tenants' associations|young families|
            developers|older homeowners|housing charities"""),
        "PLACE": _w("""the old brewery site|the riverside estate|the former hospital grounds|
            the northern housing blocks|the disused rail yards|the market square"""),
        "THING": _w("""building permits|rental contracts|insulation grants|housing surveys|
            planning applications|eviction notices|heat pumps"""),
    },
    "education": {
        "PROJECT": _w("""a new secondary school|the free breakfast programme|an adult literacy campaign|
            the expansion of early childhood centres|a teacher recruitment drive|
            the school building repair fund|a scholarship scheme for apprentices"""),
        "ISSUE": _w("""teacher shortages|falling enrolment|crowded classrooms|reading results|
            school absence rates|the cost of uniforms|ageing school buildings"""),
        "GROUP": _w("""parents|teachers|pupils|head teachers|school governors|teaching assistants|
            university students|apprentices"""),
        "PLACE": _w("""the new campus|the district primary school|the technical college|
            the public library|the sports hall|the old grammar school"""),
        "THING": _w("""exam results|classroom laptops|school buses|lunch menus|reading programmes|
            attendance records|science laboratories"""),
    },
    "health": {
        "PROJECT": _w("""a new community clinic|the hospital emergency department expansion|
            a mobile vaccination service|the mental health helpline|a dental care programme|
            the maternity ward refurbishment|a scheme to train more paramedics"""),
        "ISSUE": _w("""waiting times for surgery|ambulance delays|a shortage of family doctors|
            rising cases of measles|pressure on emergency wards|the cost of prescriptions"""),
        "GROUP": _w("""patients|nurses|junior doctors|paramedics|carers|pharmacists|hospital staff|
            older residents"""),
        "PLACE": _w("""the general hospital|the community health centre|the children's ward|
            the walk-in clinic|the regional blood bank"""),
        "THING": _w("""hospital beds|ambulances|patient records|vaccination rates|diagnostic scanners|
            staff rosters|operating theatres"""),
    },
    "energy": {
        "PROJECT": _w("""an offshore wind farm|the solar panel subsidy|a district heating network|
            the grid battery project|a coal plant closure plan|the home insulation programme|
            a hydrogen bus trial"""),
        "ISSUE": _w("""rising power bills|grid outages|the pace of the energy transition|
            fuel poverty|delays in connecting new turbines|winter gas supplies"""),
        "GROUP": _w("""households|energy retailers|engineers|industrial users|rooftop solar owners|
            grid operators|small businesses"""),
        "PLACE": _w("""the old power station|the substation on the ring road|the wind farm site|
            the harbour fuel terminal|the hillside solar park"""),
        "THING": _w("""smart meters|transmission lines|heat pumps|battery cells|turbine blades|
            electricity tariffs|gas pipelines"""),
    },
    "environment": {
        "PROJECT": _w("""a river clean-up programme|the urban tree planting scheme|a ban on single-use plastics|
            the wetland restoration project|a new recycling centre|the clean air zone|
            a flood defence wall"""),
        "ISSUE": _w("""sewage spills|air pollution|illegal dumping|the loss of green space|
            coastal erosion|falling bird numbers|summer water shortages"""),
        "GROUP": _w("""environmental groups|anglers|farmers|residents near the river|volunteers|
            birdwatchers|local businesses"""),
        "PLACE": _w("""the estuary|the wetland reserve|the old landfill|the river banks|
            the city parks|the coastal dunes"""),
        "THING": _w("""water samples|air quality monitors|recycling bins|tree saplings|flood barriers|
            drainage pipes|nesting sites"""),
    },
    "budget": {
        "PROJECT": _w("""the annual budget|a property tax increase|the capital works programme|
            a review of council spending|the new parking charges|a bond issue for infrastructure|
            the pension fund reform"""),
        "ISSUE": _w("""a growing budget deficit|rising debt costs|cuts to public services|
            the cost of road repairs|falling revenue from parking|unpaid rates"""),
        "GROUP": _w("""ratepayers|council staff|business owners|community groups|auditors|
            pensioners|union representatives"""),
        "PLACE": _w("""the council chamber|city hall|the treasury office|the civic centre|
            the town hall"""),
        "THING": _w("""spending plans|audit reports|tax bills|parking fees|service contracts|
            reserve funds|salary budgets"""),
    },
    "policing": {
        "PROJECT": _w("""a community policing plan|the new courthouse|a youth diversion programme|
            the street lighting upgrade|a victim support service|a crackdown on car theft"""),
        "ISSUE": _w("""a rise in burglaries|court backlogs|antisocial behaviour|shoplifting|
            speeding on residential streets|police recruitment"""),
        "GROUP": _w("""police officers|magistrates|victims' groups|youth workers|shopkeepers|
            residents' associations|defence lawyers"""),
        "PLACE": _w("""the central police station|the district court|the town centre|
            the night-time economy zone|the shopping precinct"""),
        "THING": _w("""crime statistics|patrol cars|body cameras|court hearings|street cameras|
            emergency calls|sentencing guidelines"""),
    },
    "business": {
        "PROJECT": _w("""a new logistics hub|the shipyard expansion|a technology park|
            the high street revival fund|a free trade zone|the factory reopening|
            a small business loan scheme"""),
        "ISSUE": _w("""job losses|empty shop fronts|supply chain delays|rising wages|
            a slowdown in exports|high borrowing costs|staff shortages"""),
        "GROUP": _w("""employers|factory workers|retailers|exporters|investors|trade unions|
            start-up founders|hospitality workers"""),
        "PLACE": _w("""the industrial estate|the port|the high street|the business park|
            the old textile mill|the waterfront"""),
        "THING": _w("""order books|shipping containers|quarterly profits|job vacancies|
            rental agreements|export licences|production lines"""),
    },
    "agriculture": {
        "PROJECT": _w("""a drought relief package|the irrigation upgrade|a farmers' market expansion|
            the soil health programme|a new grain terminal|a scheme to replant hedgerows"""),
        "ISSUE": _w("""a poor harvest|falling milk prices|water restrictions|crop disease|
            the cost of fertiliser|labour shortages at harvest time"""),
        "GROUP": _w("""farmers|growers|dairy producers|seasonal workers|orchard owners|
            livestock traders|agricultural scientists"""),
        "PLACE": _w("""the river flats|the grain terminal|the showgrounds|the orchards east of town|
            the dairy cooperative"""),
        "THING": _w("""harvest yields|irrigation quotas|grain prices|cattle numbers|soil samples|
            water allocations|fruit exports"""),
    },
    "weather": {
        "PROJECT": _w("""the storm recovery fund|a new early warning system|the flood evacuation plan|
            the bushfire preparedness campaign|a heat refuge network|the sea wall repairs"""),
        "ISSUE": _w("""flash flooding|storm damage|a prolonged heatwave|landslides on rural roads|
            power cuts after the storm|rising insurance premiums"""),
        "GROUP": _w("""emergency crews|volunteers|insurers|residents in low-lying streets|
            rural households|road crews|meteorologists"""),
        "PLACE": _w("""the low-lying streets|the coastal road|the river crossing|the evacuation centre|
            the hill suburbs|the main highway"""),
        "THING": _w("""sandbags|rain gauges|warning sirens|generators|insurance claims|
            fallen trees|repair crews"""),
    },
    "culture": {
        "PROJECT": _w("""a new concert hall|the museum extension|the summer arts festival|
            a public art trail|the restoration of the old theatre|the city archive digitisation"""),
        "ISSUE": _w("""funding for the arts|falling museum visits|the closure of music venues|
            ticket prices|the future of the old cinema|the loss of historic buildings"""),
        "GROUP": _w("""musicians|artists|museum staff|festival organisers|theatre companies|
            local historians|volunteer guides"""),
        "PLACE": _w("""the old theatre|the city museum|the art gallery|the riverside amphitheatre|
            the historic market hall"""),
        "THING": _w("""exhibition tickets|rehearsal space|archive records|visitor numbers|
            restoration grants|stage equipment"""),
    },
}

NEWS_SLOTS: Slots = {**COMMON_EN}

NEWS_LEAD = compile_all([
    "{CITY} officials [announced|confirmed|outlined|unveiled] on {DAY} [a plan|a proposal|a scheme] to "
    "[fund|expand|review|overhaul] {PROJECT}, [a move|a decision|a step] [expected|likely|set] to "
    "[affect|reshape|benefit] [thousands of|many|local] {GROUP}.",
    "The long-running [debate|dispute|argument] over {ISSUE} in {CITY} [took a new turn|reached a turning point|"
    "moved forward] this week when {ORG} [published|released|circulated] [a report|new figures|"
    "a draft strategy] on the [subject|matter|problem].",
    "{OFFICIAL} [has defended|has stood by|has justified] {PROJECT} [after|following|amid] [criticism|complaints|"
    "objections] from {GROUP} [in|across|throughout] {REGION} of {CITY}.",
    "[Plans|Proposals|A blueprint] for {PROJECT} [were approved|won approval|cleared a key vote] in {CITY} "
    "on {DAY}, [ending|closing|concluding] {n2} years of [delays|negotiation|uncertainty] over [its|the] "
    "[cost|route|design|location].",
    "{GROUP} in {CITY} [say|warn|argue] that {ISSUE} [has become|is now|remains] [the most pressing|"
    "a serious|an everyday] [problem|concern|worry] [for|facing|among] [residents|households|families], "
    "[according to|based on|as shown in] a survey [published|released] on {DAY}.",
    "A [report|review|study] [commissioned|ordered|requested] by {ORG} [has found|concluded|suggests] that "
    "{ISSUE} [costs|has cost|could cost] the {CITY} economy [about|roughly|nearly] {money} [a year|"
    "each year|annually].",
], NEWS_SLOTS)

NEWS_BODY = compile_all([
    "[According to|Citing|Based on] [figures|data|estimates] from {ORG}, {ISSUE} [has worsened|has eased slightly|"
    "has changed little] since {year}, with {pct} of {GROUP} [reporting|describing|citing] [problems|"
    "concerns|difficulties] in the [latest|most recent] survey.",
    "The [first stage|initial phase|opening part] of {PROJECT} [is expected|is due|is scheduled] to [begin|start|"
    "get under way] in {month}, [with|and] [work|construction|the rollout] [lasting|running|continuing] "
    "[about|roughly|up to] {n2} [months|years].",
    "[Council|Budget|Planning] documents [show|indicate|reveal] that {money} has [been set aside|been allocated|"
    "been earmarked] for {THING} [near|around|next to] {PLACE}.",
    "[Critics|Opponents|Sceptics] [argue|say|contend] that [the plan|the proposal|the scheme] [does too little|"
    "comes too late|ignores the real causes] [and|while] {ISSUE} [continues|goes on] to [affect|hurt|burden] "
    "{GROUP} in {REGION}.",
    "[Supporters|Backers|Advocates] of {PROJECT} [point to|cite|highlight] {city}, where a [similar|comparable|"
    "related] [scheme|programme|project] [cut|reduced|lowered] [complaints|costs|delays] by {pct} "
    "[within|in|over] {n2} years.",
    "{EXPERT}, {EXP_ROLE} at {EXP_UNIV}, [said|noted|observed] that the [numbers|figures|results] [were|seemed|looked] "
    "[encouraging|mixed|worrying] [but|although|yet] [warned|cautioned|stressed] that [one year|a single survey|"
    "early data] [proves little|is not enough|can mislead].",
    "[Last|In] {month}, [about|around|more than] {n1000} {GROUP} [signed|backed|supported] a [petition|letter|"
    "campaign] [calling for|demanding|urging] [faster action|more funding|a public inquiry] on {ISSUE}.",
    "{RESIDENT}, {RES_ROLE} from {REGION}, [said|explained|told the paper] that {ISSUE} had [changed|shaped|"
    "disrupted] [her|his|the family's] [daily routine|working week|plans] [over|during|for] the past "
    "{n2} [months|years].",
    "The [opposition|minority|independent] [group|bloc|members] on the council [proposed|tabled|put forward] "
    "[an amendment|an alternative budget|a motion] that would [redirect|shift|move] {money} [from|away from] "
    "{THING} [to|towards|into] {PROJECT}.",
    "[Engineers|Consultants|Surveyors] [hired|appointed|engaged] by {ORG} [estimate|calculate|believe] that "
    "{THING} [at|near|around] {PLACE} will [need|require] [replacing|upgrading|repairs] [within|in] "
    "{n2} years.",
    "[Under|In] the [revised|updated|new] [timetable|schedule|plan], {GROUP} [will be|would be|are to be] "
    "[consulted|asked for feedback|invited to comment] [before|ahead of|prior to] [any|a] [final|binding] "
    "[decision|vote] in {month}.",
    "[Similar|Comparable|Related] [disputes|debates|arguments] [have played out|have unfolded|arose] in {city} "
    "and {city}, where [courts|regulators|voters] [eventually|ultimately|in the end] [sided with|backed|"
    "supported] {GROUP}.",
    "[Figures|Data|Records] [obtained|released|published] under [freedom of information rules|a public records "
    "request|the annual reporting law] [show|indicate] that spending on {THING} [rose|fell|grew] by {pct} "
    "[over|during|across] the [past|last|previous] {n2} years.",
    "The [union|association|federation] [representing|that speaks for|which represents] {GROUP} [welcomed|"
    "questioned|criticised] the [announcement|decision|plan], [saying|arguing|noting] that its [members|"
    "workers|volunteers] had not been [consulted|asked|briefed] [properly|in advance|at all].",
    "[At|During] a [public meeting|community forum|town hall session] [held|organised] at {PLACE} on {DAY}, "
    "[dozens of|several hundred|about {n100}] [people|residents|locals] [raised|voiced|shared] [questions|"
    "concerns|ideas] about {PROJECT}.",
    "[Independent|Outside|External] [auditors|reviewers|analysts] [found|concluded|noted] that [earlier|"
    "previous|past] [attempts|efforts|programmes] to [tackle|address|reduce] {ISSUE} had [lacked|missed|"
    "failed to set] [clear targets|reliable data|a proper budget].",
    "{OFF_SHORT} [acknowledged|admitted|conceded] that {ISSUE} [would not|could not|was unlikely to] be "
    "[solved|fixed|resolved] [overnight|in a single year|quickly], [but|though] [said|argued|insisted] that "
    "[the direction|the strategy|the approach] was [right|sound|correct].",
    "[The|Its] [total|overall|final] [cost|price tag|budget] [has risen|has grown|climbed] [from|since the "
    "first estimate of] {money} [to|and now stands at|, reaching] {money}, [largely|mainly|partly] because "
    "of [higher|rising] [material|labour|land] [costs|prices].",
    "[Several|A number of|Some] [businesses|shops|employers] [near|around|close to] {PLACE} [have already|"
    "say they have|report that they have] [adjusted|changed|extended] their [opening hours|staffing|"
    "delivery routes] [in anticipation|to prepare|ahead of the work].",
    "[Regional|National|State] [ministers|officials|regulators] [are expected|are due|plan] to [review|assess|"
    "examine] the [business case|funding request|environmental report] [before|by the end of] {month}.",
    "[A spokesperson for|A representative of|An official at] {ORG} [said|stated|confirmed] that [the agency|"
    "the organisation|staff] would [publish|release|share] [monthly|quarterly|regular] [updates|progress "
    "reports|figures] on {THING}.",
    "{GROUP} [interviewed|contacted|approached] [by|for] this [newspaper|report|article] [were|seemed|appeared] "
    "[divided|split|undecided], [with|and] [some|many] [welcoming|praising] the [investment|plan|change] and "
    "[others|some] [doubting|questioning] [its timing|the cost|whether it would last].",
    "[Traffic|Visitor|Usage] [counts|figures|numbers] [collected|gathered|recorded] at {PLACE} [suggest|show] "
    "[roughly|about|some] {n1000} [people|vehicles|visits] a [day|week] [would|could] [be affected|benefit|"
    "notice the change].",
    "The [last|previous|most recent] [major|large|significant] [investment in|overhaul of|upgrade of] "
    "{THING} in {CITY} [took place|happened|was completed] in {year}, [when|at a time when] [demand was|"
    "the population was|prices were] [considerably|much|far] [lower|smaller].",
], NEWS_SLOTS)

NEWS_QUOTE = compile_all([
    "\"[We have|Our team has] [listened carefully|spent months listening] to {GROUP}, and [this plan|"
    "the new approach] [reflects|answers|addresses] [what they told us|their main concerns|the problems they "
    "raised],\" {OFF_SHORT} said.",
    "\"[Nobody|No one] [pretends|claims|believes] this [will be|is going to be] [easy|cheap|quick], but "
    "[doing nothing|waiting|standing still] [would cost|costs] [far|much] more in the long run,\" "
    "[said|added|argued] {OFF_SHORT}.",
    "\"[It is|This is] [the first time|a rare moment] [in years|in a decade|in my career] that [people|"
    "residents|the council] [have agreed|seem to agree] on [something|anything] [this|so] [important|"
    "basic|practical],\" {EXP_SHORT} said.",
    "\"[I just want|All we want|What we need] [is|are] [answers|a clear timetable|honest figures] [about|on] "
    "{ISSUE},\" said {RES_SHORT}, [who has lived|who has worked|who has run a business] in {REGION} for "
    "{n10} years.",
    "\"The [evidence|data|research] [from other cities|from abroad|so far] [is|looks] [fairly|quite|reasonably] "
    "[clear|consistent|strong], [but|though] [local|the] [details|conditions|circumstances] [matter|count|"
    "will decide the outcome],\" {EXP_SHORT} [said|added].",
    "\"[My|Our] [neighbours|customers|children] [ask|keep asking|wonder] [me|us] [every week|all the time|"
    "constantly] [when|whether] [anything|this] will [change|happen],\" {RES_SHORT} [said|explained].",
], NEWS_SLOTS)

NEWS_CLOSE = compile_all([
    "[The council|The board|Members] [will|are expected to|are due to] [vote|decide|deliberate] on the "
    "[final|detailed|revised] [plan|budget|design] [at its next meeting|in {month}|later this year].",
    "[Public|Written] [submissions|comments|feedback] on {PROJECT} [close|remain open|can be made] [until|"
    "through] the end of {month}.",
    "[A full|The complete|A detailed] [report|breakdown|summary] [is expected|will be published|is due] "
    "[before|ahead of|by] the [next|coming] [budget|election|council] [cycle|season|meeting].",
    "{OFF_SHORT} [said|promised|pledged] that [residents|the public|{GROUP}] would [receive|get|see] [an|a] "
    "[update|progress report|public briefing] [within|in] {n2} [weeks|months].",
], NEWS_SLOTS)


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

_SYL_ON = _ws("b br c ch d dr f g gr h k kl l m n p pr r s st t tr v w z th sh")
_SYL_V = _ws("a e i o u ai ea ia io ou")
_SYL_CO = ("", "", "", "n", "r", "l", "s", "th", "m", "nd", "rk", "st")


_SYLLABLES = tuple(o + v + c for o in _SYL_ON for v in _SYL_V for c in _SYL_CO)


def _invented(rng: Random, syllables: int) -> str:
    """An invented proper name (thousands of syllables, so names rarely repeat)."""
    rnd = rng.random
    n = len(_SYLLABLES)
    s = "".join([_SYLLABLES[int(rnd() * n)] for _ in range(syllables)])
    return s[:1].upper() + s[1:]


ENC_REGIONS = _w("""northern Portugal|central Chile|the Scottish Highlands|southern Norway|eastern Anatolia|
the Carpathian foothills|western Tasmania|the Andean plateau|northern Queensland|the Baltic coast|
the Pyrenees|central Mexico|the Balkan interior|southern Patagonia|the Atlas Mountains|upper Bavaria|
the Pacific Northwest|the Iberian meseta|eastern Finland|the Deccan plateau|the Aegean islands|
the Hudson valley|the Great Lakes basin|southern Sweden|the Cantabrian coast|the Ozark plateau|
northern Greece|the Mekong delta|the Rift valley|coastal Namibia""")
ENC_FIELDS = _w("""botany|geology|linguistics|astronomy|chemistry|cartography|hydrology|mathematics|
zoology|archaeology|meteorology|mineralogy|ornithology|entomology|agronomy|metallurgy""")
ENC_ARTS = _w("""landscape painting|choral music|printmaking|architecture|poetry|stage design|
chamber music|porcelain design|mural painting|bookbinding|sculpture|organ building""")
ENC_PERIODS = _w("""the early modern period|the late medieval period|the eighteenth century|
the nineteenth century|the early twentieth century|the Bronze Age|the Roman period|the Iron Age|
the colonial era|the industrial era""")

ENC_TYPES: dict[str, dict[str, Any]] = {
    "river": {
        "KIND": _w("river|tributary|stream|river system"),
        "FEATURE": _w("""gravel bars|oxbow lakes|wooded gorges|seasonal floods|braided channels|
            limestone cliffs|salmon runs|water meadows|old mill weirs|alluvial terraces"""),
        "USE": _w("""irrigation|timber rafting|hydroelectric power|navigation by barges|fishing|
            drinking water supply|recreational canoeing|flood control"""),
    },
    "mountain": {
        "KIND": _w("mountain|peak|massif|ridge"),
        "FEATURE": _w("""glacial cirques|scree slopes|alpine meadows|granite towers|hanging valleys|
            ancient moraines|cloud forests|permanent snowfields|volcanic vents|pine woodland"""),
        "USE": _w("""summer grazing|mountaineering|quarrying|pilgrimage|astronomical observation|
            skiing|forestry|radio transmission"""),
    },
    "town": {
        "KIND": _w("town|market town|village|municipality|parish"),
        "FEATURE": _w("""a fortified church|a covered market|a stone bridge|narrow cobbled lanes|
            a ruined castle|an old tannery district|a cathedral square|terraced vineyards|
            a railway viaduct|a harbour wall"""),
        "USE": _w("""wool trading|salt production|shipbuilding|wine making|pottery|lace making|
            coal mining|tourism|cheese making|glass blowing"""),
    },
    "species": {
        "KIND": _w("""species of beetle|species of moth|species of freshwater fish|species of songbird|
            species of orchid|species of fern|species of lizard|species of frog|species of shrub"""),
        "FEATURE": _w("""a dark dorsal stripe|iridescent wing scales|a long curved bill|serrated leaves|
            a nocturnal habit|bright orange markings|a forked tail|waxy white flowers|
            webbed hind feet|a distinctive call"""),
        "USE": _w("""habitat monitoring|traditional medicine|garden cultivation|pollination studies|
            biological pest control|conservation education|genetic research"""),
    },
    "person": {
        "KIND": _w("""scholar|painter|composer|engineer|naturalist|mathematician|architect|
            cartographer|physician|astronomer"""),
        "FEATURE": _w("""a meticulous notebook|an unusual teaching method|a long correspondence|
            a private observatory|a travelling workshop|a large herbarium|an influential treatise|
            a series of public lectures"""),
        "USE": _w("""surveying|instrument making|public education|hospital reform|translation|
            map making|botanical illustration|bridge design"""),
    },
    "mineral": {
        "KIND": _w("mineral|ore mineral|silicate mineral|carbonate mineral|gemstone"),
        "FEATURE": _w("""a glassy lustre|perfect cleavage|a deep green colour|prismatic crystals|
            strong fluorescence|a high specific gravity|twinned crystals|a fibrous habit"""),
        "USE": _w("""ceramics|pigment production|jewellery|the glass industry|electronics|
            abrasives|fertiliser|building stone"""),
    },
}

ENC_SLOTS: Slots = {**COMMON_EN, "field": ENC_FIELDS, "art": ENC_ARTS, "period": ENC_PERIODS,
                    "encregion": ENC_REGIONS, "n3000": _thousands(120, 4800)}

ENC_INTRO: dict[str, tuple[Parts, ...]] = {
    "river": compile_all([
        "The {NAME} is {AKIND} in {LOCATION} that flows [for about|for roughly|some] {n100} kilometres "
        "[before joining|into|until it meets] the {OTHER}.",
        "The {NAME} is {AKIND} [of|in] {LOCATION}, [known for|noted for|remarkable for] its {FEATURE} and "
        "[a catchment of|a basin covering|a drainage area of] {n3000} square kilometres.",
    ], ENC_SLOTS),
    "mountain": compile_all([
        "{NAME} is {AKIND} in {LOCATION} [rising to|with a summit at|that reaches] {n3000} metres "
        "[above sea level|in elevation].",
        "{NAME} is {AKIND} [of|in] {LOCATION}, [best known for|noted for|famous for] its {FEATURE} and "
        "[steep|broad|sheltered] [northern|southern|western] [face|flank|approach].",
    ], ENC_SLOTS),
    "town": compile_all([
        "{NAME} is {AKIND} in {LOCATION} with [a population of|about|roughly] {n1000} [inhabitants|"
        "residents|people] [at the last census|as of {year}|in recent counts].",
        "{NAME} is {AKIND} [of|in] {LOCATION}, [known for|noted for|remembered for] {FEATURE} and a "
        "[long|modest|prosperous] history of {USE}.",
    ], ENC_SLOTS),
    "species": compile_all([
        "{NAME} is {AKIND} [native to|found in|endemic to] {LOCATION}, [first described|formally described|"
        "named] by {DISCOVERER} in {DISC_YEAR}.",
        "{NAME} is {AKIND} [recognised by|distinguished by|identified by] {FEATURE}, [recorded|found|"
        "observed] [mainly|chiefly|mostly] in {LOCATION}.",
    ], ENC_SLOTS),
    "person": compile_all([
        "{NAME} ({BORN} to {DIED}) was {AKIND} from {LOCATION} [whose work|whose research|whose designs] "
        "[shaped|influenced|transformed] {field} [during|in] {period}.",
        "{NAME} was {AKIND} [born in|raised in|active in] {LOCATION} [in|around] {BORN}, [remembered for|"
        "best known for|noted for] {FEATURE}.",
    ], ENC_SLOTS),
    "mineral": compile_all([
        "{NAME} is {AKIND} [first identified|first described|named] in {DISC_YEAR} from [samples|specimens|"
        "material] [collected|found|gathered] in {LOCATION}.",
        "{NAME} is {AKIND} [known for|characterised by|recognised by] {FEATURE}, [occurring|found|mined] "
        "[chiefly|mainly|mostly] in {LOCATION}.",
    ], ENC_SLOTS),
}

ENC_BODY: dict[str, tuple[Parts, ...]] = {
    "river": compile_all([
        "[Its source|The source of the river|Its headwaters] [lies|sit|are found] [on the slopes of|below|near] "
        "{PEAK} at an elevation of [about|roughly] {n3000} metres.",
        "[Along its|In its|Throughout its] [middle|lower|upper] course the {KIND} [passes|winds past|flows "
        "through] {n2} [towns|villages|settlements], [including|among them|the largest being] {TOWN}.",
        "The [valley|river|basin] [was|has been] used for {USE} [since|from] {period}, and [remains|became|"
        "was once] [important|significant|central] for {USE}.",
        "[Seasonal|Spring|Autumn] [discharge|flow|water levels] [varies|vary|change] [widely|considerably|"
        "sharply], [peaking|reaching a maximum|rising] in {month} [after|with|following] [snowmelt|heavy rain|"
        "the monsoon].",
        "[Several|A number of|Numerous] [dams|weirs|locks] [were built|were constructed|were added] between "
        "{oldyear} and {year}, [altering|changing|reducing] the [natural|original|seasonal] [flow|"
        "sediment transport|fish migration].",
        "The name {NAME} is [thought|believed|said] to [derive|come] from an [old|ancient|early] [word|term|"
        "local name] [meaning|for] \"{GLOSS}\".",
        "[Water quality|The ecology of the river|Its fish population] [improved|recovered|changed markedly] "
        "after {year}, [when|once|after] [a|the] [treatment|monitoring|restoration] [programme|scheme|plan] "
        "[began|was introduced|took effect].",
        "[Its|The] [largest|main|principal] [tributary|feeder stream|side river], the {OTHER2}, [joins|enters|"
        "meets] [it|the main channel] [near|below|above] {TOWN}.",
    ], ENC_SLOTS),
    "mountain": compile_all([
        "The [first recorded|earliest documented|first known] [ascent|climb|crossing] [was made|took place|"
        "was completed] in {oldyear} by a [party|team|group] [led by|under|guided by] {person}.",
        "[Geologically|In geological terms|Structurally], the {KIND} [consists of|is formed of|is made of] "
        "[granite|schist|limestone|basalt|gneiss] [uplifted|folded|raised] [during|in] {period}.",
        "[Its|The] [lower|middle|upper] slopes [support|carry|hold] {FEATURE}, [while|whereas|and] the "
        "[summit|ridge|upper zone] is [bare|rocky|often snow-covered] for {n2} months of the year.",
        "[The area|The region|The surrounding land] [has been|was long|is still] used for {USE}, [and|while] "
        "{TOWN} [serves as|acts as|is] the [usual|main|traditional] [base|starting point] for [visitors|"
        "climbers|walkers].",
        "[A|An old] [pass|trail|mule track] [crosses|skirts|climbs] the [eastern|western|northern] [shoulder|"
        "flank|ridge] at [about|roughly] {n3000} metres and [was|has been] [used|travelled] since {period}.",
        "The name {NAME} [is thought|is believed|is said] to [come|derive] from a [local|regional|"
        "shepherds'] [word|term|expression] [meaning|for] \"{GLOSS}\".",
        "[Weather|Climate|Conditions] on the {KIND} [change|shift|turn] [quickly|rapidly|without warning], "
        "and [annual|yearly] [precipitation|snowfall|rainfall] [exceeds|reaches|averages] {n1000} "
        "millimetres [on the windward side|at higher levels|near the summit].",
        "[Research|Survey|Monitoring] [stations|plots|programmes] [established|set up|founded] in {year} "
        "[track|record|measure] [glacier retreat|plant communities|soil erosion] [on|across|along] "
        "the [upper|lower|northern] [slopes|valleys|ridges].",
    ], ENC_SLOTS),
    "town": compile_all([
        "[The settlement|The town|The place] [is first mentioned|first appears|is recorded] in [a charter|"
        "a tax register|a church record] [of|dated|from] {oldyear}, [when|at which time|as] it [belonged to|"
        "was held by|paid dues to] the [lords|bishops|abbots] of {TOWN}.",
        "[During|In|Throughout] {period} the [local|town's|regional] economy [depended on|rested on|"
        "centred on] {USE}, [and|while] {FEATURE} [dates|survives] from [this|the same] [time|era].",
        "[A railway|The railway|A branch line] [reached|arrived in|was extended to] {NAME} in {oldyear}, "
        "[linking|connecting|joining] it [to|with] {TOWN} and [the coast|the capital|regional markets].",
        "[Notable|Important|Well-known] [buildings|landmarks|sites] [include|comprise|are] {FEATURE} and "
        "[a|the] [former|old|restored] [town hall|customs house|grammar school|granary].",
        "[The population|Its population|The number of inhabitants] [fell|declined|dropped] [after|following] "
        "{period} [but|and|yet] [has grown|recovered|stabilised] [since|after] {year}.",
        "The name {NAME} [is derived|comes|is believed to come] from [an old|a medieval|an early] [word|"
        "term|form] [meaning|for] \"{GLOSS}\".",
        "[An annual|A yearly|A traditional] [fair|festival|procession] [held|celebrated|staged] [each|every] "
        "{month} [commemorates|marks|recalls] the town's [history|heritage|origins] of {USE}.",
        "[Local|Municipal|Civic] [government|administration|affairs] [is|are] [led|run|overseen] by a "
        "[council|mayor and council|board] of {n10} members [elected|chosen] every {n2} years.",
    ], ENC_SLOTS),
    "species": compile_all([
        "[Adults|Mature individuals|Fully grown specimens] [measure|reach|grow to] [about|roughly|up to] "
        "{dec} centimetres [in length|across|in height] and [show|have|display] {FEATURE}.",
        "[It|The species|This taxon] [inhabits|prefers|occupies] [damp woodland|rocky streams|coastal scrub|"
        "upland heath|river margins|limestone grassland] at [elevations|altitudes] [of|between] "
        "{n100} and {n3000} metres.",
        "[The|Its] [breeding|flowering|spawning] [season|period] [runs|lasts|extends] from {month} to "
        "{month}, [when|during which|and in this time] [pairs|plants|adults] [are|become] [most|especially] "
        "[visible|active|conspicuous].",
        "[The|Its] [specific|species] [name|epithet] [refers to|honours|alludes to] {HONOUR}.",
        "[Populations|Numbers|Local populations] [have declined|have fallen|are decreasing] [since|after] "
        "{year} [owing to|because of|as a result of] [drainage|habitat loss|pesticide use|"
        "invasive competitors], and [the species|it] is [listed|classified|assessed] as [vulnerable|"
        "near threatened|of least concern].",
        "[It|The species] [is|has been] [used|studied|valued] in {USE}, [and|while] [specimens|samples|"
        "records] [are|have been] [kept|held|deposited] at {univ}.",
        "[Its closest|The nearest|A close] [relative|relation|ally] [is|appears to be|is thought to be] "
        "{RELATIVE}, [from which|which] it [differs|can be told apart|is distinguished] by {FEATURE}.",
        "[Its|The] [diet|food] [consists|is made up] [mainly|largely|chiefly] of [small insects|seeds|"
        "algae|nectar|leaf litter|aquatic larvae], [taken|gathered|found] [at dusk|near water|"
        "on the ground].",
    ], ENC_SLOTS),
    "person": compile_all([
        "[Born|Raised|Brought up] in {TOWN}, [the|this] [future|young] {KIND} [studied|trained|was educated] "
        "[at|in] {univ} [before|and then|prior to] [moving|travelling|relocating] to {city}.",
        "[Early|Initial|First] [work|research|commissions] [focused|concentrated|centred] on {USE}, "
        "[which|an interest that|a subject that] [led to|resulted in|produced] {FEATURE}.",
        "[In|By] {MIDYEAR} {SHORT} had [published|completed|produced] [a|an] [study|survey|series] of "
        "{field} that [was|became|remained] [widely|frequently|often] [cited|copied|discussed] "
        "[for decades|for a generation|long afterwards].",
        "[Colleagues|Contemporaries|Students] [described|remembered|recalled] {SHORT} as [patient|exacting|"
        "generous|reserved|restless], [with|and with|having] a [habit|talent|gift] for {USE}.",
        "[Later|In later|In the final] [years|life|decades], {SHORT} [returned|retired|withdrew] to {TOWN}, "
        "[where|and there] [a|the] [museum|library|school] [now|today|still] [holds|keeps|displays] "
        "[many|most|several] of [the|these] [papers|drawings|instruments].",
        "[A|The] [prize|medal|scholarship] [named|founded] [after|in honour of] {SHORT} [has been|is] "
        "[awarded|given|presented] [each year|annually|every {n2} years] [since|from] {year}.",
        "{SHORT} [married|wed] {person} in {MIDYEAR}, and [the couple|they|the family] [lived|settled] in "
        "{city} for {n10} years.",
        "[Historians|Biographers|Scholars] [have debated|still disagree about|continue to discuss] [how much|"
        "whether|the extent to which] {SHORT} [relied on|borrowed from|was influenced by] {person}.",
    ], ENC_SLOTS),
    "mineral": compile_all([
        "[It|The mineral] [crystallises|occurs|forms] in the [monoclinic|orthorhombic|triclinic|hexagonal] "
        "[system|crystal system] and has a Mohs hardness of [about|roughly] {HARD}.",
        "[It|The mineral|This species] [forms|occurs|develops] in [hydrothermal veins|granite pegmatites|"
        "altered basalts|marble|evaporite deposits] [together with|alongside|associated with] {RELATIVE}.",
        "[The|Its] name [honours|refers to|commemorates] {HONOUR}.",
        "[Commercial|Small-scale|Historical] [mining|extraction|quarrying] [began|started|took place] "
        "[in|around] {oldyear} [near|close to|at] {TOWN}, [mainly|chiefly|largely] for {USE}.",
        "[Fine|Large|Well-formed] [specimens|crystals|samples] [are|have been] [held|displayed|kept] at "
        "{univ} and [in|at] [several|a few|many] [private|regional|national] [collections|museums].",
        "[Under|In] [ultraviolet light|polarised light|the microscope] [it|the mineral] [shows|displays|"
        "reveals] {FEATURE}, [which|a property that] [helps|allows] [collectors|geologists|analysts] to "
        "[identify|recognise|distinguish] it.",
        "[Chemically|In composition|By composition], [it|the mineral] [is|consists of] a [hydrated|complex|"
        "simple] [silicate|carbonate|phosphate|sulfate] of [iron|copper|manganese|calcium|zinc] and "
        "[aluminium|magnesium|sodium|lead].",
        "[Synthetic|Artificial|Laboratory-grown] [crystals|versions|equivalents] [were|have been] [produced|"
        "made|grown] since {year} [for|to support|in] [research|industry|optical work].",
    ], ENC_SLOTS),
}

ENC_COMMON = compile_all([
    "[A|An extensive|The first detailed] [survey|study|description] [published|carried out|made] in "
    "{year} by {person} [remains|is still|is considered] the [standard|main|best] [reference|account|"
    "source] on {SHORTNAME}.",
    "[The|Its] [earliest|first known|oldest] [written|printed|surviving] [mention|record|reference] "
    "[appears|is found|occurs] in a [travel account|land survey|monastery chronicle] of {oldyear}.",
    "[Local|Regional|Popular] [legends|stories|traditions] [associate|connect|link] {SHORTNAME} with "
    "[a lost|a wandering|an early] [saint|merchant|shepherd|poet], [though|but|although] [historians|"
    "scholars|researchers] [doubt|question|dispute] [the story|the tale|this account].",
    "[Since|From] {year}, [records|documents|papers] [about|on|concerning] {SHORTNAME} [have been|are] "
    "[catalogued|digitised|collected] [by|at] {univ}.",
    "[Maps|Charts|Atlases] [from|produced during|of] {period} [show|mark|record] {SHORTNAME} [under|with|"
    "using] [a different|an older|a variant] [name|spelling], [which|a form that] [persisted|survived|"
    "remained in use] until {year}.",
    "[Visitors|Students|Researchers] [travelling|coming] to {LOCATION} [often|frequently|usually] [include|"
    "combine] {SHORTNAME} [in|with] [an itinerary|a wider tour|field trips] [that also covers|alongside|"
    "together with] {TOWN}.",
    "[An exhibition|A documentary|A short film] [devoted to|about|on] {SHORTNAME} [opened|was shown|premiered] "
    "in {city} in {year}, [drawing|attracting] [about|some|nearly] {n1000} [visitors|viewers].",
    "[Writers|Commentators|Travellers] [in|during] {period} [mentioned|described|praised] {SHORTNAME} "
    "[only briefly|at some length|in passing], [usually|often|mostly] [in connection with|alongside|when "
    "discussing] {field}.",
    "[The|A] [regional|provincial|local] [archive|library|museum] in {TOWN} [holds|keeps|preserves] [letters|"
    "drawings|photographs|ledgers] [relating to|concerning|about] {SHORTNAME} [from|dating from|covering] "
    "{oldyear} [onwards|to the present].",
    "[Debate|Discussion|Disagreement] [about|over|concerning] [the|its] [origin|classification|significance] "
    "[continued|lasted|persisted] [into|until|through] {period}, [when|after|once] [new|better|more complete] "
    "[evidence|records|measurements] [became available|emerged|were published].",
    "[Modern|Recent|Current] [estimates|assessments|accounts] [place|put] [its|the] [age|extent|importance] "
    "[somewhat|considerably|slightly] [higher|lower] than [earlier|older|nineteenth-century] [sources|"
    "writers|surveys] [suggested|claimed|assumed].",
    "[Several|A number of|Some] [streets|schools|ships|societies] in {city} [are|were] [named|called] after "
    "{SHORTNAME}, [a sign of|reflecting|showing] [a|its] [lasting|wide|regional] [reputation|influence|fame].",
    "[A|The] [short|detailed|popular] [guide|monograph|booklet] [written|compiled|edited] by {person} in "
    "{year} [summarises|reviews|collects] [most|much|the best] of what is known about {SHORTNAME}.",
    "[Photographs|Sketches|Engravings] [made|taken|produced] [around|in|about] {oldyear} [show|depict|record] "
    "{SHORTNAME} [much as|largely as|almost exactly as] it [appears|looks|is described] [today|now|in "
    "modern accounts].",
], ENC_SLOTS)

_GLOSS = _w("""white water|bright stone|the bend|the alder grove|cold spring|the crossing|the long meadow|
grey hill|the eagle's rest|the salt marsh|the narrow gap|the shepherd's hut|the black pool|the high pasture|
the rushing stream|the quiet ford|the red cliff|the old oak""")
_PRACTITIONERS = _ws("botanist geologist linguist astronomer chemist cartographer collector naturalist "
                     "surveyor explorer physician missionary")
_EPITHETS = _ws("""borealis minor major rufescens alpina montanus sylvestris orientalis occidentalis
gracilis robustus lacustris fluviatilis maculatus nigricans aurantiaca velutina hirsuta elegans
pallidus ferrugineus variegata obscura splendens""")


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
        genus = genus[:1].upper() + genus[1:] + _pick(rng, ("us", "ia", "ella", "ops", "ium", "is"))
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
        ctx["RELATIVE"] = _pick(rng, ("quartz", "calcite", "pyrite", "feldspar", "mica", "garnet", "barite"))
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

FORUM_TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "homebrewing": {
        "ITEM": _w("fermenter|airlock|hydrometer|wort chiller|grain bag|bottling wand|mash tun|keg"),
        "PROBLEM": _w("""a stuck fermentation|a sour off flavour|cloudy beer|flat bottles|a slow start|
            a buttery aftertaste|too much foam"""),
        "ACTION": _w("""raised the mash temperature|switched yeast strains|cold crashed the batch|
            cleaned everything twice|added more priming sugar|pitched a bigger starter"""),
        "THING": _w("pale ale|stout|cider|wheat beer|porter|saison|mead"),
    },
    "cycling": {
        "ITEM": _w("rear derailleur|chain|disc brakes|tubeless tyres|bottom bracket|saddle|headset|wheelset"),
        "PROBLEM": _w("""a clicking noise under load|skipping gears|squealing brakes|slow punctures|
            sore knees on long rides|a wobbly back wheel"""),
        "ACTION": _w("""adjusted the cable tension|replaced the chain|bled the brakes|moved the saddle back|
            trued the wheel|swapped the cassette"""),
        "THING": _w("gravel bike|road bike|commuter bike|mountain bike|touring bike|folding bike"),
    },
    "gardening": {
        "ITEM": _w("raised bed|compost heap|greenhouse|tomato plants|apple tree|rose bushes|seed trays"),
        "PROBLEM": _w("""yellowing leaves|aphids on the new growth|blossom end rot|slugs everywhere|
            seedlings falling over|powdery mildew"""),
        "ACTION": _w("""watered less often|added more compost|moved the pots into the shade|
            pruned the lower branches|sprayed soapy water|changed the potting mix"""),
        "THING": _w("vegetable patch|allotment|balcony garden|herb border|orchard|front garden"),
    },
    "woodworking": {
        "ITEM": _w("table saw|hand plane|router|chisels|workbench|dovetail jig|band saw|sanding block"),
        "PROBLEM": _w("""tear-out on the edges|a cupped board|gaps in the joints|burn marks|
            a blotchy finish|a wobbly table leg"""),
        "ACTION": _w("""sharpened the blade|let the wood acclimatise|switched to a finer grit|
            glued up in stages|used a sealer coat|reset the fence"""),
        "THING": _w("bookcase|dining table|oak shelf|tool chest|rocking chair|cutting board"),
    },
    "aquarium": {
        "ITEM": _w("canister filter|heater|test kit|LED light|air pump|gravel vacuum|planted tank"),
        "PROBLEM": _w("""green water|an ammonia spike|fish hiding all day|fin rot|snails multiplying|
            cloudy water after a change"""),
        "ACTION": _w("""did smaller water changes|cut the lighting hours|added live plants|
            fed every other day|rinsed the filter media|tested the water daily"""),
        "THING": _w("community tank|shrimp tank|cichlid setup|nano tank|pond|betta tank"),
    },
    "photography": {
        "ITEM": _w("prime lens|tripod|mirrorless body|flash|polarising filter|camera bag|zoom lens"),
        "PROBLEM": _w("""soft focus at the edges|noisy night shots|blown highlights|motion blur|
            dust spots on the sensor|odd colour casts"""),
        "ACTION": _w("""shot in raw|raised the shutter speed|used a remote release|
            cleaned the sensor|bracketed the exposures|calibrated the monitor"""),
        "THING": _w("landscape shots|portraits|wildlife photos|street photos|astrophotography|macro shots"),
    },
    "computers": {
        "ITEM": _w("graphics card|power supply|motherboard|cooler|solid state drive|memory kit|monitor"),
        "PROBLEM": _w("""random restarts|high idle temperatures|coil whine|a blue screen on boot|
            stuttering in games|the fans ramping up"""),
        "ACTION": _w("""updated the firmware|reseated the memory|reapplied thermal paste|
            ran a memory test|reinstalled the drivers|swapped the power cable"""),
        "THING": _w("gaming build|home server|editing workstation|small form factor build|old laptop"),
    },
    "running": {
        "ITEM": _w("trail shoes|heart rate monitor|running watch|foam roller|hydration vest|insoles"),
        "PROBLEM": _w("""shin splints|a tight calf|side stitches|blisters on long runs|
            a plateau in my times|knee pain on descents"""),
        "ACTION": _w("""slowed down my easy runs|added strength work|changed my shoes|
            shortened my stride|took a rest week|ran more hills"""),
        "THING": _w("half marathon|first marathon|trail race|park run|ten kilometre race|ultra"),
    },
    "baking": {
        "ITEM": _w("sourdough starter|dutch oven|proofing basket|stand mixer|baking stone|bench scraper"),
        "PROBLEM": _w("""a dense crumb|a flat loaf|a pale crust|a gummy middle|a sluggish starter|
            dough sticking to everything"""),
        "ACTION": _w("""fed the starter twice a day|extended the bulk ferment|lowered the hydration|
            preheated the oven longer|used more rye flour|shaped it tighter"""),
        "THING": _w("sourdough loaf|baguettes|rye bread|focaccia|bagels|brioche"),
    },
    "cars": {
        "ITEM": _w("timing belt|brake pads|alternator|spark plugs|radiator|clutch|battery|wheel bearing"),
        "PROBLEM": _w("""a grinding noise when braking|a rough idle|a warning light|a slow crank in the morning|
            steering pulling left|a coolant leak"""),
        "ACTION": _w("""replaced the pads|cleaned the throttle body|checked the fuses|
            flushed the coolant|rotated the tyres|tested the battery"""),
        "THING": _w("old hatchback|estate car|pickup truck|diesel van|hybrid|classic roadster"),
    },
    "camping": {
        "ITEM": _w("tent|sleeping bag|camp stove|water filter|sleeping mat|head torch|backpack"),
        "PROBLEM": _w("""condensation inside the tent|cold nights|a leaking seam|a heavy pack|
            a stove that keeps going out|sore shoulders"""),
        "ACTION": _w("""opened the vents|added a liner|sealed the seams|left the extra gear at home|
            switched fuel canisters|adjusted the hip belt"""),
        "THING": _w("weekend trip|coastal walk|mountain hike|canoe trip|winter camp|festival weekend"),
    },
    "guitar": {
        "ITEM": _w("acoustic guitar|amplifier|capo|set of strings|tuner|effects pedal|bridge saddle"),
        "PROBLEM": _w("""fret buzz|strings going out of tune|sore fingertips|a crackling input jack|
            high action|a muddy tone"""),
        "ACTION": _w("""adjusted the truss rod|changed the strings|cleaned the pots|
            lowered the saddle|practised with a metronome|set the intonation"""),
        "THING": _w("fingerstyle piece|blues solo|chord progression|jazz standard|folk song|scales"),
    },
    "knitting": {
        "ITEM": _w("circular needles|merino yarn|stitch markers|blocking mats|cable needle|yarn swift"),
        "PROBLEM": _w("""uneven tension|dropped stitches|a sweater that came out too wide|laddering|
            curling edges|yarn splitting"""),
        "ACTION": _w("""went down a needle size|knitted a gauge swatch|used lifelines|
            blocked it properly|switched to wooden needles|counted every row"""),
        "THING": _w("cardigan|pair of socks|lace shawl|winter hat|baby blanket|fair isle jumper"),
    },
    "beekeeping": {
        "ITEM": _w("hive box|smoker|queen excluder|frames|veil|honey extractor|feeder"),
        "PROBLEM": _w("""a swarm in spring|varroa mites|a queenless colony|robbing by wasps|
            a weak colony after winter|chalkbrood"""),
        "ACTION": _w("""added a super|treated for mites|combined two colonies|reduced the entrance|
            fed sugar syrup|checked the brood pattern"""),
        "THING": _w("first hive|apiary|honey harvest|nucleus colony|top bar hive|winter preparation"),
    },
}

_HANDLE_A = _ws("quiet silver rusty lucky amber misty bold clever gentle happy lazy stormy sunny wild "
                "little grumpy brave sleepy swift")
_HANDLE_B = _ws("falcon otter badger heron maple cedar pixel rover sparrow walrus moose tiger lynx "
                "kettle lantern pebble comet beacon")


def _handle(rng: Random) -> str:
    return f"{_pick(rng, _HANDLE_A)}_{_pick(rng, _HANDLE_B)}{int(rng.random() * 100)}"


FORUM_SLOTS: Slots = {**COMMON_EN, "handle": _handle}

FORUM_OPEN = compile_all([
    "[Hi all|Hello everyone|Hi folks], I have been [working on|fiddling with|using] my {THING} for about "
    "{n2} [months|weeks|years] and [recently|lately|this week] I [noticed|ran into|started getting] "
    "{PROBLEM}.",
    "[Long time reader|Longtime lurker|Occasional poster] here, [hoping|wondering|asking] if [someone|anyone|"
    "one of you] can [help|advise|point me in the right direction] with {PROBLEM} on my {THING}.",
    "[So|Right|Okay], [this is|here is] [a strange one|a question that has been bugging me|something I cannot "
    "work out]: my {ITEM} [seems to|appears to|might] [cause|be behind|be linked to] {PROBLEM}.",
    "I [finally|eventually|at last] [finished|started|got round to] the {THING} I [mentioned|talked about|"
    "posted about] in {month}, [but|and|although] I am still [fighting|dealing with|stuck with] "
    "{PROBLEM}.",
], FORUM_SLOTS)

FORUM_BODY = compile_all([
    "[So far|Up to now|Until now] I have [already|also] {ACTION} and [checked every connection|read the manual "
    "again|cleaned everything], [but|yet|and still] [nothing|neither] [seems to|appears to] make [much|a lot of|"
    "any real] difference.",
    "[My|The] {ITEM} is [about|roughly|almost] {n2} years old and [came from|was bought from|I picked it up "
    "at] a [shop|seller|friend] in {city}, [so|which means] [it might|it could] [simply|just] be [worn|"
    "tired|past its best].",
    "[Last|This] [weekend|Saturday|Sunday] I [tried|attempted|tested] [it|things] again after I "
    "{ACTION}, and [for a while|for a day or two|at first] [it|everything] [seemed|looked|felt] [fine|better|"
    "normal].",
    "[Has anyone|Does anyone|Did anyone here] [else|ever] [had|seen|dealt with] [this|something similar|"
    "the same thing] [with|on] [a|their] {ITEM}?",
    "I [read|saw|found] [a thread|an old post|a guide] [suggesting|claiming|saying] that people who {ACTION} "
    "[had fewer problems with|got rid of|stopped seeing] {PROBLEM}, [but|though|however] I [am not sure|"
    "wonder whether|doubt] [that applies|the same is true] for my {THING}.",
    "[For context|For what it is worth|In case it matters], I [live|am based] [near|in|outside] {city} and "
    "the [weather|climate] [here|around here] has been [unusually|very|quite] [damp|warm|cold|dry] [lately|"
    "this season|for weeks].",
    "My [neighbour|friend|brother-in-law] [reckons|thinks|is convinced] the {ITEM} [might be|could be] "
    "the [culprit|problem|cause], [but|while] [I|my partner] [suspect|think|believe] it [is|has to do with] "
    "how I [set it up|use it|store it].",
    "I [would rather|prefer to|want to] [avoid|not go for|hold off on] [buying|ordering|getting] a [new|"
    "replacement|second] {ITEM} [unless|until] I [know|am sure|can confirm] [it will help|that is the cause|"
    "nothing else works].",
    "[Any|All] [advice|suggestions|tips|pointers] [would be|are] [very|really|much] [welcome|appreciated], "
    "and I [can|will|am happy to] [post|share|upload] [photos|more details|measurements] [if|when] "
    "[that helps|needed|useful].",
    "[Edit|Update|Quick update]: [after|following] [a suggestion|the advice|a tip] from {handle}, I "
    "{ACTION} and [things already look|everything now seems|it already feels] [a bit|slightly|much] better.",
    "[In|Over] the [past|last] {n2} [weeks|months] I [kept|have kept] [notes|a log|a small diary] and "
    "{PROBLEM} [tends to|seems to|usually] [appear|happen|start] [after|when|once] I {ACTION}.",
    "[Thanks|Thank you|Cheers] [in advance|already|everyone], [this|the] [forum|community|board] has [been|"
    "proved] [more|far more] [helpful|useful] than [any|every] [manual|video|book] I [own|have read|found].",
    "[To be fair|Honestly|To be honest] the {THING} [still|mostly|largely] [works|turns out|comes out] "
    "[fine|well|okay], [it is|it's just] [the|that] {PROBLEM} [bothers|annoys|frustrates] me [more|a lot|"
    "every time].",
    "[One|Another|The other] [thing|detail|oddity] I [noticed|spotted|should mention]: the [problem|issue|"
    "fault] [only|mainly|mostly] [appears|happens|shows up] [in the morning|on warm days|after rain|"
    "when I rush].",
    "[A few|Several|Two] [years|seasons|months] ago I had a [cheaper|simpler|second-hand] {ITEM} and "
    "[never|rarely|hardly ever] [saw|had|noticed] {PROBLEM}, [which|and that] [makes|is what makes] me "
    "[suspect|think|wonder about] the [new|current] [one|setup|parts].",
    "[The|My] [local|nearest|favourite] [shop|club|repair place] in {city} [told|assured|suggested to] me "
    "that {PROBLEM} is [common|normal|nothing unusual] [for|with|on] a {THING}, [but|though|yet] "
    "[it|this] [never happened|did not happen] [before|with the old one|last year].",
    "[Budget|Money] is [a bit|rather|quite] tight [here|for me|at the moment], so "
    "[anything|any fix|a solution] under {n10} [pounds|dollars|euros] [would be|is] [ideal|perfect|great].",
    "[My|Our] [partner|daughter|son|flatmate] [thinks|says|jokes] I [spend|waste] [far|way] too [much time|"
    "many hours|many evenings] on the {THING}, [which|and that] is [probably|almost certainly] true.",
    "[Photos|Pictures|A short video] [are|is] [attached|linked|in the first reply] [showing|so you can see] "
    "[the setup|how it looks|the {ITEM}] [before|after|during] [the problem|the last attempt|cleaning].",
    "[When|Whenever|Each time] I [check|inspect|look at] the {ITEM} [closely|carefully|under a torch], "
    "[nothing|everything] [looks|seems] [obviously|clearly|visibly] [wrong|fine|out of place], which "
    "[makes|leaves] [this|the whole thing] [more|even more] [puzzling|confusing|annoying].",
    "[Someone|A member|An older member] [on|in] [another|a different|a local] [forum|group|club] "
    "[recommended|mentioned|swore by] a [cheap|simple|clever] [trick|fix|adjustment], but [the explanation was|"
    "the instructions were|their description was] [vague|confusing|hard to follow].",
    "[In|For] [the|my] [first|second|third] [year|season] [with|of] [this|the] [hobby|setup] I [made|learned "
    "from|kept a list of] [plenty of|lots of|several] [mistakes|errors|bad decisions], [so|and so] I "
    "[fully|honestly] expect the answer to be [something|a detail] [obvious|simple|embarrassingly simple].",
], FORUM_SLOTS)

FORUM_CLOSE = compile_all([
    "[I will|I'll] [report back|post an update|let you know] [once|when|after] I have [tried|tested|checked] "
    "[this|the suggestions|everything] [over|during|at] the [weekend|next few days|coming week].",
    "[Happy|Glad|Pleased] to [hear|read|learn] [what|how] [others|you all|everyone] [think|would do|handle "
    "it], [especially|particularly|above all] [anyone|people|those] [with|who own|running] a [similar|"
    "comparable] {THING}.",
], FORUM_SLOTS)


def gen_forum_en(rng: Random) -> DocSpec:
    ctx: dict[str, Any] = dict(FORUM_TOPICS[_pick(rng, sorted(FORUM_TOPICS))])
    n_body = 8 + int(rng.random() * 9)
    blocks = _prose_blocks(rng, FORUM_OPEN, FORUM_BODY, (), FORUM_CLOSE, n_body, (2, 4))
    return DocSpec(blocks, ctx, " ", None, None, "en", "forum")


# ----------------------------------------------------------------------------------------------
# Code (Python and JavaScript snippets)

CODE_VERBS = _ws("parse load compute merge validate render fetch normalize build collect filter group "
                 "summarize encode decode resolve count schedule rank split index convert format apply")
CODE_NOUNS = _ws("invoice order user sensor reading packet tile record payment shipment ticket route "
                 "account booking message sample window batch token segment metric station device "
                 "report customer product event frame")
CODE_ATTRS = _ws("price amount weight score total length priority timestamp count status level size "
                 "duration distance rating quantity offset")


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

PY_HEADER = [
    ['"""Helpers for {NOUN} {ATTR} handling in the {MODULE} module.', "",
     "These functions keep the {NOUN} logic in one place so the report and the importer agree.",
     '"""', "", "from __future__ import annotations", "", "import json", "import math",
     "from collections import defaultdict"],
    ["# {MODULE}: small utilities for {NOUN} data.", "# Each function is pure so it can be tested in isolation.",
     "", "import json", "import math", "from collections import defaultdict"],
]

PY_FUNCS = [
    ["def {FN}({ARG}, limit={n10}):",
     '    """Return the {ATTR} of every {NOUN} whose {ATTR2} is above the limit.',
     "",
     "    The input is an iterable of dicts; missing values are skipped rather than raising.",
     '    """',
     "    {VAR} = []",
     "    for {ITEM} in {ARG}:",
     "        value = {ITEM}.get(\"{ATTR2}\")",
     "        if value is not None and value > limit:",
     "            {VAR}.append({ITEM}[\"{ATTR}\"])",
     "    return {VAR}"],
    ["def {FN}({ARG}):",
     '    """Group {NOUN}s by {ATTR} and count them, largest group first."""',
     "    counts = defaultdict(int)",
     "    for {ITEM} in {ARG}:",
     "        counts[{ITEM}[\"{ATTR}\"]] += 1",
     "    # Sorting by negative count keeps ties in a stable, predictable order.",
     "    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))"],
    ["def {FN}({ARG}, weight={dec}):",
     '    """Exponentially smooth the {ATTR} series so spikes in {NOUN} data do not dominate."""',
     "    smoothed = []",
     "    current = None",
     "    for value in {ARG}:",
     "        current = value if current is None else weight * value + (1 - weight) * current",
     "        smoothed.append(round(current, {n2}))",
     "    return smoothed"],
    ["def {FN}(path):",
     '    """Read {NOUN} records from a JSON lines file, skipping blank lines."""',
     "    {VAR} = []",
     "    with open(path, encoding=\"utf-8\") as handle:",
     "        for line in handle:",
     "            line = line.strip()",
     "            if line:",
     "                {VAR}.append(json.loads(line))",
     "    return {VAR}"],
    ["def {FN}({ARG}, size={n10}):",
     '    """Split the {NOUN} list into chunks of at most size items, keeping their order."""',
     "    if size <= 0:",
     "        raise ValueError(\"size must be positive\")",
     "    return [{ARG}[i:i + size] for i in range(0, len({ARG}), size)]"],
    ["def {FN}({ARG}):",
     '    """Return the mean and standard deviation of the {NOUN} {ATTR} values."""',
     "    values = [{ITEM}[\"{ATTR}\"] for {ITEM} in {ARG}]",
     "    if len(values) < 2:",
     "        return (values[0] if values else 0.0), 0.0",
     "    mean = sum(values) / len(values)",
     "    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))",
     "    return mean, spread"],
    ["class {CLASS}:",
     '    """Keep a running total of {NOUN} {ATTR} values with a fixed capacity of {CAP}."""',
     "",
     "    def __init__(self, capacity={CAP}):",
     "        self.capacity = capacity",
     "        self.{VAR} = []",
     "",
     "    def add(self, value):",
     "        # Drop the oldest value first so memory stays bounded.",
     "        if len(self.{VAR}) >= self.capacity:",
     "            self.{VAR}.pop(0)",
     "        self.{VAR}.append(value)",
     "",
     "    def total(self):",
     "        return sum(self.{VAR})"],
    ["def {FN}({ARG}, default=0):",
     '    """Map each {NOUN} id to its {ATTR}, using a default when the {ATTR} is missing."""',
     "    # {WHY}",
     "    lookup = {}",
     "    for {ITEM} in {ARG}:",
     "        lookup[{ITEM}[\"id\"]] = {ITEM}.get(\"{ATTR}\", default)",
     "    return lookup"],
    ["def {FN}(first, second):",
     '    """Merge two sorted {NOUN} lists by {ATTR} without sorting again."""',
     "    {VAR} = []",
     "    i = j = 0",
     "    while i < len(first) and j < len(second):",
     "        # {WHY}",
     "        if first[i][\"{ATTR}\"] <= second[j][\"{ATTR}\"]:",
     "            {VAR}.append(first[i])",
     "            i += 1",
     "        else:",
     "            {VAR}.append(second[j])",
     "            j += 1",
     "    return {VAR} + first[i:] + second[j:]"],
    ["def {FN}({ARG}, threshold={dec}):",
     '    """Flag {NOUN}s whose {ATTR} changed by more than the threshold since the last {NOUN}."""',
     "    flagged = []",
     "    previous = None",
     "    for {ITEM} in {ARG}:",
     "        current = {ITEM}[\"{ATTR}\"]",
     "        if previous is not None and abs(current - previous) > threshold * abs(previous or 1):",
     "            flagged.append({ITEM})",
     "        previous = current",
     "    # {WHY}",
     "    return flagged"],
    ["def {FN}({ARG}):",
     '    """Return the {NOUN} with the highest {ATTR}, or None for an empty input."""',
     "    best = None",
     "    for {ITEM} in {ARG}:",
     "        # {WHY}",
     "        if best is None or {ITEM}[\"{ATTR}\"] > best[\"{ATTR}\"]:",
     "            best = {ITEM}",
     "    return best"],
    ["def {FN}({ARG}, key=\"{ATTR}\"):",
     '    """Rank {NOUN}s by the given key, breaking ties by their {ATTR2}."""',
     "    ranked = sorted({ARG}, key=lambda {ITEM}: ({ITEM}[key], {ITEM}.get(\"{ATTR2}\", 0)), reverse=True)",
     "    for position, {ITEM} in enumerate(ranked, start=1):",
     "        {ITEM}[\"rank\"] = position",
     "    return ranked"],
    ["def {FN}(text):",
     '    """Turn a line like \'{ATTR}=3;{ATTR2}=7\' into a dict of integers for a {NOUN}."""',
     "    result = {}",
     "    for pair in text.split(\";\"):",
     "        if \"=\" not in pair:",
     "            continue",
     "        name, _, raw = pair.partition(\"=\")",
     "        result[name.strip()] = int(raw)",
     "    return result"],
]

JS_HEADER = [
    ["// {MODULE}.js: browser helpers for {NOUN} {ATTR} values.", "// Kept free of framework code so it runs in tests.",
     "\"use strict\";"],
    ["/**", " * Utilities used by the {MODULE} page to summarise {NOUN} data.", " */"],
]

JS_FUNCS = [
    ["function {FNJS}({ARG}, limit = {n10}) {",
     "  // Keep only the entries whose {ATTR} exceeds the limit.",
     "  return {ARG}.filter(({ITEM}) => {ITEM}.{ATTR} > limit);",
     "}"],
    ["function {FNJS}({ARG}) {",
     "  // Sum the {ATTR} of every {NOUN}; missing values count as zero.",
     "  let total = 0;",
     "  for (const {ITEM} of {ARG}) {",
     "    total += Number({ITEM}.{ATTR} || 0);",
     "  }",
     "  return total;",
     "}"],
    ["const {FNJS} = ({ARG}, key) => {",
     "  // Build a lookup table from key to {NOUN} for constant-time access.",
     "  const table = new Map();",
     "  {ARG}.forEach(({ITEM}) => table.set({ITEM}[key], {ITEM}));",
     "  return table;",
     "};"],
    ["async function {FNJS}(url) {",
     "  // Fetch {NOUN} records and fail loudly on a bad status code.",
     "  const response = await fetch(url);",
     "  if (!response.ok) {",
     "    throw new Error(\"request failed with status \" + response.status);",
     "  }",
     "  return response.json();",
     "}"],
    ["function {FNJS}({ARG}, size = {n2}) {",
     "  // Split the {NOUN} list into pages of the given size.",
     "  const pages = [];",
     "  for (let i = 0; i < {ARG}.length; i += size) {",
     "    pages.push({ARG}.slice(i, i + size));",
     "  }",
     "  return pages;",
     "}"],
    ["function {FNJS}({ARG}) {",
     "  // Count how many {NOUN} entries share each {ATTR} value.",
     "  const counts = {};",
     "  for (const {ITEM} of {ARG}) {",
     "    // {WHY}",
     "    counts[{ITEM}.{ATTR}] = (counts[{ITEM}.{ATTR}] || 0) + 1;",
     "  }",
     "  return counts;",
     "}"],
    ["function {FNJS}({ARG}, delay = {n100}) {",
     "  // Retry loading the {NOUN} list a few times before giving up.",
     "  let attempts = 0;",
     "  const run = () => load({ARG}).catch((err) => {",
     "    attempts += 1;",
     "    // {WHY}",
     "    if (attempts > {n2}) throw err;",
     "    return new Promise((resolve) => setTimeout(resolve, delay)).then(run);",
     "  });",
     "  return run();",
     "}"],
    ["function {FNJS}({ARG}) {",
     "  // Sort a copy by {ATTR} so the caller's array is left untouched.",
     "  return [...{ARG}].sort((a, b) => a.{ATTR} - b.{ATTR});",
     "}"],
]

_CODE_WHY = _w("""the input is usually small so a plain loop is fine|keep the original order for stable reports|
missing values were seen in older exports|this mirrors what the dashboard expects|cheap check first|
avoid mutating the caller's data|the comparison must match the database collation|
the upstream feed sometimes repeats rows|null means the field was never filled in|
bounded work keeps the request fast|ties are rare but must be deterministic|values arrive already validated|
we only care about relative changes here|this branch is covered by the regression test""")
_COMMENTS_EN = _w("""check the edge case first|this path is rarely taken|keep the original order|
values are already validated upstream|avoid a second pass over the data|cheap enough for small inputs|
the caller owns the returned list|see the unit tests for examples|guard against empty input|
rounding happens at the very end""")


_CODE_ITEMS = _ws("item entry row rec obj elem part unit node piece record element doc cell x")
_CODE_VARS = _ws("result selected out values found kept matches picked collected acc buffer chosen bucket pool")


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
_MATH_OBJECTS = _w("""pencils|notebooks|apples|marbles|stamps|tickets|books|oranges|seedlings|bricks|
tiles|candles|jars of honey|bags of flour|bottles of juice|postcards""")
_MATH_VEHICLES = _w("train|cyclist|delivery van|ferry|bus|runner|car|tractor")

MATH_INTRO = compile_all([
    "[The following|These|Here are some] [worked examples|practice problems|exercises] [show|illustrate|"
    "demonstrate] how to [set up|write|build] an equation [from|out of|based on] a [word problem|short story|"
    "description] and [then|afterwards] [solve|check|verify] it [step by step|carefully|one step at a time].",
    "[In each|For every|In every] [problem|example|exercise] [below|that follows], [read|consider|study] the "
    "[situation|statement|question] [first|carefully], [name|choose|define] the unknown [quantity|value], "
    "and [only then|afterwards|then] [reach for|start on|begin] the arithmetic.",
    "[This|The present|Our] [set of|collection of|short list of] [problems|examples|exercises] [covers|"
    "reviews|practises] [rates|percentages|equations|areas] and [other|several|a few] [ideas|topics|skills] "
    "[that appear|that come up|found] [often|regularly|frequently] in [school|entrance|everyday] "
    "[mathematics|examinations|calculations].",
], MATH_SLOTS)


def _mp_speed(rng: Random) -> tuple[list[str], dict[str, str]]:
    speed = 20 + int(rng.random() * 80)
    hours = 2 + int(rng.random() * 5)
    dist = speed * hours
    return ([
        "[A|One] {V} [travels|covers|goes] {D} kilometres in {WH} hours at a [steady|constant|uniform] speed.",
        "What is its [average|constant] speed?",
        "[Speed|The speed] [equals|is] distance divided by time, so [we write|we get|the calculation is] "
        "v = {D} / {H} = {S} kilometres per hour.",
        "[To check|As a check|Checking], {S} times {H} [gives|equals|is] {D}, which [matches|agrees with] "
        "the distance in the [question|problem|statement].",
    ], {"V": _pick(rng, _MATH_VEHICLES), "D": str(dist), "H": str(hours), "S": str(speed)})


def _mp_discount(rng: Random) -> tuple[list[str], dict[str, str]]:
    price = 20 + 5 * int(rng.random() * 36)
    pct = _pick(rng, (10, 15, 20, 25, 30, 40, 50))
    off = price * pct / 100
    new = price - off
    return ([
        "[A|One] [jacket|lamp|bicycle helmet|kettle|rucksack|board game] [costs|is priced at|sells for] {P} "
        "dollars [before|prior to|ahead of] a {R} percent [discount|reduction|markdown].",
        "[How much|What] does [a customer|the buyer|someone] [pay|spend] [after|once] the [discount|"
        "reduction] [is applied|is taken off|comes off]?",
        "[The discount|The saving|The reduction] [is|equals|comes to] {R} percent of {P}, [that is|which is|"
        "namely] {P} times {R} / 100 = {O} dollars.",
        "[Subtracting|Taking away|Removing] [it|this amount|the saving] [gives|leaves|yields] {P} - {O} = {N} "
        "dollars, [which is|and this is] the [final|new|sale] price.",
    ], {"P": str(price), "R": str(pct), "O": f"{off:g}", "N": f"{new:g}"})


def _mp_linear(rng: Random) -> tuple[list[str], dict[str, str]]:
    a = 2 + int(rng.random() * 8)
    x = 2 + int(rng.random() * 15)
    b = 1 + int(rng.random() * 30)
    c = a * x + b
    return ([
        "[Solve|Find the value of x in] the equation {A}x + {B} = {C}.",
        "[First|To begin|We start by] [subtract|subtracting|taking away] {B} from both sides, which "
        "[gives|leaves|produces] {A}x = {AX}.",
        "[Then|Next|After that] [divide|dividing] both sides by {A} [to get|gives|and we obtain] x = {X}.",
        "[Substituting|Putting|Plugging] x = {X} [back|back into the left side] [gives|yields] {A} times {X} "
        "plus {B}, which [is|equals] {C}, so the [answer|solution] [is correct|checks out|holds].",
    ], {"A": str(a), "B": str(b), "C": str(c), "AX": str(a * x), "X": str(x)})


def _mp_rectangle(rng: Random) -> tuple[list[str], dict[str, str]]:
    w = 3 + int(rng.random() * 20)
    h = 3 + int(rng.random() * 20)
    return ([
        "[A|One] [garden|classroom floor|rug|field|patio|poster] [is|measures] {WW} metres [wide|across] and "
        "{WH} metres [long|deep].",
        "What are [its|the] area and [its|the] perimeter?",
        "[The area|Area] [is|equals] [width times length|length times width], so A = {W} x {H} = {AR} "
        "square metres.",
        "[The perimeter|Perimeter] [is|equals] twice the sum of the sides, so P = 2 x ({W} + {H}) = {PE} "
        "metres, [which is|that is] the [length of|distance around] the [edge|boundary|border].",
    ], {"W": str(w), "H": str(h), "AR": str(w * h), "PE": str(2 * (w + h))})


def _mp_average(rng: Random) -> tuple[list[str], dict[str, str]]:
    k = 4 + int(rng.random() * 3)
    vals = [40 + int(rng.random() * 60) for _ in range(k)]
    total = sum(vals)
    return ([
        "[A student|A pupil|Someone] [scored|earned|received] {VALS} [on|in] {WK} [tests|quizzes|"
        "assignments].",
        "What is the [mean|average] [score|mark|result]?",
        "[Adding|Summing] the [scores|marks|results] [gives|produces|yields] a total of {T}, and there are "
        "{WK} of them.",
        "[The mean|The average] [is therefore|is then|equals] {T} / {K} = {M}, [rounded|given|written] to "
        "two decimal places.",
    ], {"VALS": ", ".join(map(str, vals[:-1])) + f" and {vals[-1]}", "K": str(k), "T": str(total),
        "M": f"{total / k:.2f}"})


def _mp_ratio(rng: Random) -> tuple[list[str], dict[str, str]]:
    a = 1 + int(rng.random() * 5)
    b = a + 1 + int(rng.random() * 4)
    unit = 3 + int(rng.random() * 20)
    total = (a + b) * unit
    return ([
        "{P1} and {P2} [share|divide|split] {T} {O} in the ratio {WA} to {WB}.",
        "[How many|What number of] {O} does each [person|of them] [receive|get|end up with]?",
        "[The ratio|The split] has {WAB} parts [in total|altogether], so [each part|one part] [is worth|"
        "equals|is] {T} / {AB} = {U} {O}.",
        "{P1} [receives|gets|takes] {WA} parts, [that is|which is|namely] {RA}, and {P2} [receives|gets|takes] "
        "{WB} parts, [that is|which is|namely] {RB}, [which|and these] [add up|sum] to {T}.",
    ], {"P1": _pick(rng, FIRST_NAMES), "P2": _pick(rng, FIRST_NAMES), "T": str(total), "A": str(a),
        "B": str(b), "AB": str(a + b), "U": str(unit), "RA": str(a * unit), "RB": str(b * unit),
        "O": _pick(rng, _MATH_OBJECTS)})


def _mp_interest(rng: Random) -> tuple[list[str], dict[str, str]]:
    p = 500 * (1 + int(rng.random() * 20))
    r = _pick(rng, (2, 3, 4, 5, 6))
    t = 2 + int(rng.random() * 6)
    i = p * r * t / 100
    return ([
        "[A sum of|An amount of|A deposit of] {P} dollars [is placed|is invested|earns simple interest] "
        "at {WR} percent per year for {WT} years.",
        "How much [interest|simple interest] [does it earn|is earned], and what is the [final|total] "
        "balance?",
        "Simple interest [is|equals] principal times rate times time, so I = {P} x {R} / 100 x {T} = {I} "
        "dollars.",
        "[The balance|The total|The account] [then|therefore|at the end] [stands at|holds|is] {P} + {I} = "
        "{B} dollars.",
    ], {"P": str(p), "R": str(r), "T": str(t), "I": f"{i:g}", "B": f"{p + i:g}"})


def _mp_pythagoras(rng: Random) -> tuple[list[str], dict[str, str]]:
    a, b, c = _pick(rng, ((3, 4, 5), (5, 12, 13), (8, 15, 17), (7, 24, 25), (20, 21, 29), (9, 40, 41)))
    k = 1 + int(rng.random() * 4)
    return ([
        "[A ladder|A wire|A diagonal path] [reaches|runs|stretches] from a point {A} metres [from the base "
        "of a wall|along one side|east of a post] to a point {B} metres [up the wall|along the other side|"
        "north of it].",
        "[How long|What length] [is it|must it be|does it need to be]?",
        "[The two distances|The two sides|These lengths] [form|make] a right angle, so by Pythagoras the "
        "length squared [is|equals] {A2} + {B2} = {C2}.",
        "[Taking|Finding|Computing] the square root [gives|yields|shows] a length of {C} metres, [which|and "
        "this] [is|makes sense as] longer than [either|each] [side|distance].",
    ], {"A": str(a * k), "B": str(b * k), "A2": str((a * k) ** 2), "B2": str((b * k) ** 2),
        "C2": str((c * k) ** 2), "C": str(c * k)})


def _mp_work(rng: Random) -> tuple[list[str], dict[str, str]]:
    a, b = _pick(rng, ((3, 6), (4, 12), (6, 12), (10, 15), (12, 24), (6, 30), (20, 30), (5, 20)))
    together = a * b / (a + b)
    return ([
        "{P1} can [paint|clean|tidy] a [fence|room|hall] in {WA} hours, [while|and] {P2} [needs|takes] {B} "
        "hours for the same [job|task|work].",
        "[How long|How many hours] [will it take|would it take] [them|the two of them] [working together|"
        "side by side]?",
        "In one hour {P1} [does|completes|finishes] one {A}th of the [job|task] and {P2} one {B}th, so "
        "[together|jointly] they [do|complete] 1/{A} + 1/{B} of it [per|each] hour.",
        "[That|This] [rate|sum] [equals|is] 1/{T}, so [the job|the work|it] [takes|needs] {T} hours "
        "[when they share it|working together|in total].",
    ], {"P1": _pick(rng, FIRST_NAMES), "P2": _pick(rng, FIRST_NAMES), "A": str(a), "B": str(b),
        "T": f"{together:g}"})


def _mp_probability(rng: Random) -> tuple[list[str], dict[str, str]]:
    red = 2 + int(rng.random() * 8)
    blue = 2 + int(rng.random() * 8)
    green = 1 + int(rng.random() * 6)
    total = red + blue + green
    return ([
        "[A bag|A box|A jar] [holds|contains] {WR} red, {WB} blue and {WG} green [marbles|counters|beads].",
        "[If|When] one is [drawn|taken|picked] at random, what is the probability that it is [not|"
        "anything but] blue?",
        "There are {T} [marbles|items|objects] [in all|altogether|in total], and {NB} of them are not blue.",
        "The probability [is therefore|equals|is] {NB} / {T}, [which is|or] about {PR} [as a decimal|"
        "when rounded].",
    ], {"R": str(red), "B": str(blue), "G": str(green), "T": str(total), "NB": str(total - blue),
        "PR": f"{(total - blue) / total:.3f}"})


def _mp_sequence(rng: Random) -> tuple[list[str], dict[str, str]]:
    a = 1 + int(rng.random() * 20)
    d = 2 + int(rng.random() * 9)
    n = 10 + int(rng.random() * 40)
    return ([
        "[An arithmetic sequence|A sequence of numbers|A number pattern] [starts|begins] with {A}, {A2}, "
        "{A3} and [keeps|goes on|continues] adding {WD}.",
        "What is the {N}th term?",
        "The [general|nth] term of [such|an arithmetic] sequence is the first term plus (n - 1) times the "
        "[common difference|step], [that is|namely|here] {A} + (n - 1) x {D}.",
        "[For|With|Taking] n = {N} [this gives|we get|the formula gives] {A} + {NM1} x {D} = {T}.",
    ], {"A": str(a), "A2": str(a + d), "A3": str(a + 2 * d), "D": str(d), "N": str(n),
        "NM1": str(n - 1), "T": str(a + (n - 1) * d)})


def _mp_circle(rng: Random) -> tuple[list[str], dict[str, str]]:
    r = 2 + int(rng.random() * 18)
    return ([
        "[A round|A circular] [table|pond|flower bed|rug] has a radius of {WR} [metres|feet].",
        "[Estimate|Calculate|Find] [its|the] area, [using|taking] pi [as|equal to] 3.14.",
        "The area of a circle [is|equals] pi times the radius squared, so A = 3.14 x {R2}.",
        "[That|This] [gives|comes to|works out at] about {AR} square [metres|feet], [while|and] the "
        "circumference [is|comes to] 2 x 3.14 x {R} = {C}.",
    ], {"R": str(r), "R2": str(r * r), "AR": f"{3.14 * r * r:.2f}", "C": f"{2 * 3.14 * r:.2f}"})


def _mp_system(rng: Random) -> tuple[list[str], dict[str, str]]:
    y = 1 + int(rng.random() * 20)
    x = y + 1 + int(rng.random() * 20)
    return ([
        "[Two numbers|A pair of numbers] [add up to|have a sum of] {S} and [differ by|have a difference of] "
        "{D}.",
        "What are the [two numbers|numbers]?",
        "[Writing|Calling] them x and y, we have x + y = {S} and x - y = {D}, and adding the [two|equations] "
        "[gives|yields] 2x = {S2}.",
        "[So|Hence|Therefore] x = {X}, and [substituting|putting this] back [gives|shows] y = {S} - {X} = {Y}.",
    ], {"S": str(x + y), "D": str(x - y), "S2": str(2 * x), "X": str(x), "Y": str(y)})


_NUM_WORDS = _ws("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                 "fifteen sixteen seventeen eighteen nineteen twenty")
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


MATH_EXPLAIN = compile_all([
    "The [first|most important|key] [step|move|idea] is to [translate|turn|rewrite] the [words|sentences|story] "
    "into [symbols|an equation|a short calculation] before doing any arithmetic at all.",
    "[It helps|It is useful|It pays] to [name|label|write down] the unknown [quantity|value|amount] [first|"
    "clearly], [because|since|so that] [every|each] [later|following] step [then|can] [refers|refer] back to it.",
    "[Notice|Observe|Note] that the [question|problem|statement] [gives|provides|contains] [all|exactly] the "
    "[information|facts|data] [we need|that is needed|required], [and|so] [nothing|no extra fact] has to be "
    "[guessed|assumed|invented].",
    "[Many|Some|A lot of] [students|learners|people] [rush|hurry|skip] [this|the setting-up] [stage|part], [but|"
    "yet|although] [writing|setting out] the [relationship|equation|rule] [carefully|in words first] [prevents|"
    "avoids|stops] [most|many|careless] [errors|mistakes|slips].",
    "[Units|The units|Measurement units] [matter|count|deserve attention] [here|as well|too], [so|and so] we "
    "[keep|carry|write] them [alongside|next to|with] [each|every] [number|value|quantity] [throughout|all the "
    "way through|until the end].",
    "[Before|Prior to] [calculating|working anything out|doing the sums], [a|one] [quick|rough|sensible] "
    "[estimate|guess|approximation] [tells|shows] us [roughly|approximately|about] [what|how large] the "
    "[answer|result] [should be|ought to be|will be].",
    "The [same|identical|very same] [method|approach|technique] [works|applies|carries over] [for|to] [any|other] "
    "[numbers|values|quantities], [which|and this] is [why|the reason] it is [worth|useful] [learning|"
    "understanding|practising] [properly|in general|as a pattern].",
    "[A|One] [diagram|sketch|picture] [is|can be] [helpful|useful|worthwhile] [here|at this point|in this "
    "case], [because|since|as] it [shows|makes clear|reveals] [which|what] [quantities|values|parts] [depend|"
    "rely] on [each other|one another|the others].",
    "[Working|Proceeding|Going] [step by step|one line at a time|slowly] [also|moreover|in addition] "
    "[makes|leaves] [it|the work] [easy|easier|simpler] for [someone else|a teacher|a classmate] to "
    "[follow|check|read] the [reasoning|argument|solution] [later|afterwards|at a glance].",
    "[If|When|Whenever] the [answer|result|number] [looks|seems|appears] [strange|odd|far too large], [it|that] "
    "[usually|often|normally] [means|signals|points to] [a slip|an error|a mistake] in the [setting up|first "
    "equation|reading of the question] [rather than|and not] in the [arithmetic|sums|calculation].",
    "[We|Here we] [do not|never] [round|shorten|simplify] [intermediate|partial|early] [results|values|answers], "
    "[because|since|as] [rounding|shortening] [too early|at the start|midway] [can|may|will] [spoil|distort|"
    "change] the [final|last] [answer|result|figure].",
    "[This|Such a|That] [kind of|type of|style of] [problem|question|exercise] [appears|shows up|turns up] "
    "[often|regularly|again and again] [in|on] [homework|tests|examinations] [because|since|as] it [combines|"
    "links|joins] [reading|careful reading|interpretation] [with|and] [simple|basic|plain] [algebra|arithmetic].",
], MATH_SLOTS)

MATH_CLOSE = compile_all([
    "[In every case|Each time|In all of these], [checking|verifying|testing] the [answer|result] against "
    "the [original|starting] [statement|question] [catches|reveals|exposes] [most|many|nearly all] "
    "[slips|mistakes|errors] [before|long before] they [matter|spread|cause trouble].",
    "[A useful|One good|A reliable] [habit|rule|practice] is to [estimate|guess|judge] the [size|order|"
    "magnitude] of the answer [first|beforehand], [so that|because then] [a|any] [wildly|clearly|badly] "
    "wrong [result|number] [stands out|is easy to spot].",
], MATH_SLOTS)


def gen_math(rng: Random) -> DocSpec:
    k = 3 + int(rng.random() * 4)
    blocks = [Block([_pick(rng, MATH_INTRO)])]
    explain = _sample(rng, len(MATH_EXPLAIN), min(len(MATH_EXPLAIN), 2 * k))
    for i, j in enumerate(_sample(rng, len(MATH_PROBLEMS), k)):
        srcs, nums = MATH_PROBLEMS[j](rng)
        first = f"[Problem|Example|Exercise] {_NUM_WORDS[i + 1]}. " + srcs[0]
        sents: list[Parts | str] = [_math_tpl(first)] + [_math_tpl(s) for s in srcs[1:]]
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

ZH_CITIES = _ws("""
北京 上海 广州 深圳 天津 重庆 杭州 南京 苏州 成都 武汉 西安 长沙 郑州 青岛 厦门 合肥 昆明 沈阳 大连 宁波
无锡 福州 济南 哈尔滨 长春 南昌 贵阳 南宁 兰州 太原 石家庄 呼和浩特 乌鲁木齐 海口 银川 西宁 温州 佛山 东莞
珠海 常州 徐州 扬州 绍兴 嘉兴 金华 台州 泉州 漳州 烟台 潍坊 洛阳 宜昌 襄阳 岳阳 株洲 桂林 柳州 遵义 绵阳
南通 镇江 芜湖 赣州 九江 湛江 汕头 惠州 中山 江门 保定 唐山 邯郸 大同 包头 鄂尔多斯 吉林 大庆 鞍山 锦州
威海 日照 临沂 淄博 泰安 连云港 盐城 淮安 宿迁 湖州 丽水 衢州 舟山 三明 南平 龙岩 宜宾 南充 德阳 乐山
""")
ZH_PROVINCES = _ws("""河北省 山西省 辽宁省 吉林省 黑龙江省 江苏省 浙江省 安徽省 福建省 江西省 山东省 河南省
湖北省 湖南省 广东省 海南省 四川省 贵州省 云南省 陕西省 甘肃省 青海省""")
ZH_DEPTS = _ws("""统计局 发展和改革委员会 教育局 交通运输局 生态环境局 卫生健康委员会 文化广电旅游局 商务局
科学技术局 农业农村局 住房和城乡建设局 市场监督管理局 人力资源和社会保障局 水务局 气象局 应急管理局
自然资源和规划局 民政局 财政局 城市管理局""")
ZH_SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
                    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚"
                    "邵万钱严覃武戴莫孔向汤")
ZH_GIVEN = _ws("""伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀英 霞 平 刚 桂英 建华 文 华 红 志强 晓东
海燕 国庆 思远 子涵 雨桐 浩然 一鸣 嘉怡 欣怡 梓萱 宇轩 晨曦 振华 立新 春梅 玉兰 建国 晓明 丽华 文博 诗涵
俊杰 佳琪 昊天 若曦 泽宇 雅婷 明轩 慧敏 永刚 红霞 秋菊 德胜 卫东 少华 海涛 志远 家豪 静怡 子墨""")
ZH_TITLES = _ws("副市长 局长 副局长 主任 副主任 处长 新闻发言人 党组书记 总工程师 区长")
ZH_EXPERT_ORGS = _ws("""北京大学 清华大学 复旦大学 浙江大学 南京大学 武汉大学 中山大学 四川大学 同济大学 厦门大学
南开大学 山东大学 中国社会科学院 国务院发展研究中心 中国城市规划设计研究院 华东师范大学 西安交通大学""")
ZH_EXPERT_ROLES = _ws("教授 研究员 副教授 首席专家 高级工程师 副研究员")


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
    "period": _w("今年一季度|今年上半年|今年前三季度|今年前五个月|去年全年|今年前十个月"),
}

ZH_NEWS_TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "交通": {
        "PROJ": _w("地铁三号线延伸段|城市快速路改造工程|跨江大桥|公交线网优化方案|新能源公交车更新计划|"
                   "高铁站综合交通枢纽"),
        "ISSUE": _w("早晚高峰拥堵|停车难|公交准点率偏低|学校周边交通安全|老旧路面破损|网约车管理"),
        "GROUP": _w("通勤市民|公交司机|外卖骑手|沿线居民|出租车司机|物流企业"),
        "PLACE": _w("火车站片区|城东换乘中心|机场快速路|老城区主干道|开发区环线"),
        "IND": _w("公共交通客运量|道路通行效率|城市轨道交通日均客流|新能源汽车保有量"),
    },
    "教育": {
        "PROJ": _w("中小学新建扩建工程|课后延时服务|职业教育提质计划|普惠性幼儿园建设|智慧校园建设|教师队伍培训计划"),
        "ISSUE": _w("学位供给紧张|大班额问题|学生课业负担|校园食品安全|农村学校师资不足|托育费用偏高"),
        "GROUP": _w("学生家长|一线教师|中小学校长|职业院校学生|幼儿园园长|社区志愿者"),
        "PLACE": _w("新城片区学校|高新区实验小学|市图书馆|职教园区|老城区中学"),
        "IND": _w("义务教育入学率|普惠性幼儿园覆盖率|职业院校就业率|教育经费投入"),
    },
    "医疗": {
        "PROJ": _w("社区卫生服务中心改造|家庭医生签约服务|区域医疗中心建设|急救站点布局|互联网医院平台|医保异地结算"),
        "ISSUE": _w("看病排队时间长|基层医生短缺|急诊压力大|药品价格偏高|老年人就医不便|医保报销流程复杂"),
        "GROUP": _w("患者及家属|基层医务人员|社区居民|老年人|医院管理者|药店经营者"),
        "PLACE": _w("市人民医院|社区卫生服务站|妇幼保健院|急救指挥中心|中医院新院区"),
        "IND": _w("门急诊人次|家庭医生签约率|基层诊疗量占比|平均住院日"),
    },
    "经济": {
        "PROJ": _w("数字经济产业园|跨境电商综合试验区|专精特新企业培育计划|夜间消费街区|物流枢纽|招商引资重点项目"),
        "ISSUE": _w("中小企业融资难|外贸订单波动|实体商铺空置|用工成本上升|消费需求偏弱|产业链配套不足"),
        "GROUP": _w("中小企业主|外贸企业|个体工商户|园区企业|投资者|青年创业者"),
        "PLACE": _w("经济技术开发区|高新技术产业园|港口物流园|商业步行街|综合保税区"),
        "IND": _w("地区生产总值|规模以上工业增加值|社会消费品零售总额|外贸进出口总额|固定资产投资"),
    },
    "环境": {
        "PROJ": _w("河道综合治理工程|垃圾分类示范小区建设|城市绿道|污水处理厂扩建|湿地公园修复|大气污染联防联控"),
        "ISSUE": _w("黑臭水体|夏季臭氧污染|建筑垃圾乱倒|城市内涝|噪声扰民|绿地被侵占"),
        "GROUP": _w("沿河居民|环保志愿者|物业公司|环卫工人|周边企业|社区居委会"),
        "PLACE": _w("护城河沿岸|城南湿地|老工业区|垃圾处理中心|滨江公园"),
        "IND": _w("空气质量优良天数|地表水达标率|生活垃圾回收利用率|城市绿化覆盖率|细颗粒物平均浓度"),
    },
    "农业": {
        "PROJ": _w("高标准农田建设|冷链物流体系|农村电商服务站|智慧农业示范基地|种业振兴行动|乡村旅游提升计划"),
        "ISSUE": _w("农产品滞销|农资价格上涨|农村劳动力不足|灌溉设施老化|病虫害防治|农民增收放缓"),
        "GROUP": _w("种粮大户|果农|农民合作社|家庭农场主|返乡青年|农技人员"),
        "PLACE": _w("粮食生产功能区|茶叶种植基地|蔬菜批发市场|现代农业产业园|乡镇农技站"),
        "IND": _w("粮食总产量|农村居民人均可支配收入|农产品网络零售额|农业机械化率"),
    },
    "文旅": {
        "PROJ": _w("历史文化街区保护更新|博物馆新馆|非遗展示中心|夜间文旅消费集聚区|城市音乐节|红色旅游线路"),
        "ISSUE": _w("景区节假日拥挤|文物保护资金不足|旅游产品同质化|老字号经营困难|演出票价偏高|古建筑损毁"),
        "GROUP": _w("游客|非遗传承人|文创企业|景区从业人员|街区商户|文化志愿者"),
        "PLACE": _w("古城墙遗址|老街区|市博物馆|滨湖景区|文化艺术中心"),
        "IND": _w("接待游客人次|旅游总收入|博物馆参观人次|文化产业增加值"),
    },
    "住房": {
        "PROJ": _w("保障性租赁住房筹建|老旧小区改造|城中村改造|住房公积金新政|加装电梯工程|物业服务提升行动"),
        "ISSUE": _w("租房成本上升|小区停车位不足|物业纠纷|房屋渗漏|电梯老化|配套设施不完善"),
        "GROUP": _w("新市民和青年人|老旧小区居民|业主委员会|物业企业|租房群体|开发企业"),
        "PLACE": _w("老城区片区|城北新区|工业园区配套宿舍|棚改安置小区|地铁沿线地块"),
        "IND": _w("保障性住房开工套数|老旧小区改造完成率|公积金缴存额|新建商品住宅成交面积"),
    },
    "科技": {
        "PROJ": _w("人工智能产业园|重点实验室建设|科技成果转化平台|科技型中小企业培育|算力中心|创新创业孵化基地"),
        "ISSUE": _w("高端人才短缺|研发投入不足|成果转化率偏低|创新资源分散|关键零部件依赖外部|数据安全风险"),
        "GROUP": _w("科研人员|高校师生|科技企业|创业团队|投资机构|产业园区"),
        "PLACE": _w("科学城|高新区创新中心|大学科技园|软件园|数据中心"),
        "IND": _w("研发经费投入强度|高新技术企业数量|发明专利授权量|技术合同成交额"),
    },
    "就业": {
        "PROJ": _w("高校毕业生就业促进行动|职业技能提升培训|零工市场建设|创业担保贷款|返乡创业扶持计划|公益性岗位开发"),
        "ISSUE": _w("结构性用工短缺|青年就业压力|灵活就业保障不足|技能与岗位不匹配|欠薪问题|招聘信息不对称"),
        "GROUP": _w("应届毕业生|农民工|灵活就业人员|用人单位|退役军人|下岗职工"),
        "PLACE": _w("人力资源市场|零工驿站|就业服务中心|创业孵化园|职业技能实训基地"),
        "IND": _w("城镇新增就业人数|城镇调查失业率|技能培训人次|创业担保贷款发放额"),
    },
}

ZH_NEWS_LEAD = compile_all([
    "{DATE}，{CITY}市{DEPT}[发布|公布|通报]了{PERIOD}{IND}[相关数据|有关情况|统计结果]，[数据显示|统计显示|结果表明]，"
    "全市{IND}[同比增长|比上年同期提高|同比上升]{pct}。",
    "[记者|本报记者]从{CITY}市{DEPT}[获悉|了解到|得知]，{PROJ}[已于|将于|计划于]{date}[正式启动|全面开工|投入试运行]，"
    "[预计|计划|力争]在{n2}年内[完成|建成|见到成效]。",
    "[近日|日前|本周]，{CITY}[召开|举行]{PROJ}[推进会|专题会议|新闻发布会]，{OFFICIAL}[介绍|通报|说明]了"
    "[当前|近期|下一阶段]的[工作进展|主要任务|重点安排]。",
    "[围绕|针对|聚焦]{ISSUE}[这一|这个|这项][难题|问题|民生关切]，{CITY}[出台|推出|印发]了[一揽子|一系列|多项]"
    "[措施|政策|办法]，[重点|主要|首先]惠及{GROUP}。",
    "[一份|最新一份|一项]由{EXP_ORG}[发布|完成|牵头]的[调查|研究报告|评估]显示，{ISSUE}[已经成为|仍是|正在成为]"
    "{CITY}{GROUP}[最关心|最为关注|反映最多]的问题之一。",
], ZH_SLOTS)

ZH_NEWS_BODY = compile_all([
    "[据|根据]{DEPT}[统计|测算|介绍]，{year}以来，全市[累计|共计|先后][投入|安排|落实]资金{money}，"
    "[用于|主要用于|集中用于]{PROJ}[等|和相关配套]项目。",
    "[从|就]{PLACE}[的情况|的实际情况|的试点情况]来看，{ISSUE}[有所缓解|明显改善|仍然比较突出]，"
    "[约|将近|超过]{n10}%的{GROUP}[表示|认为|反映][情况好转|满意|还有待改进]。",
    "{OFFICIAL}[表示|指出|强调]，[下一步|接下来|今后一个时期]将[继续|进一步|加快][推进|完善|落实]{PROJ}，"
    "[切实|努力|着力][解决|缓解|回应]{GROUP}[反映的|关心的|关注的][突出问题|实际困难|具体诉求]。",
    "[在|记者在]{PLACE}[看到|注意到|采访时发现]，[施工现场|现场|周边区域][秩序井然|一派繁忙|人来人往]，"
    "[多台|数十台|一批][机械设备|施工车辆|工作人员][正在|正在有序|同时][作业|施工|忙碌]。",
    "{EXPERT}[认为|分析指出|接受采访时表示]，[解决|应对|治理]{ISSUE}[不能|难以|无法][一蹴而就|单靠一项政策|"
    "只靠政府投入]，[需要|还需|更要][统筹|兼顾|协调][多方|各方|社会各界]力量。",
    "[家住|居住在|在]{PLACE}[附近|一带|周边]的{GROUP}{RESIDENT}[告诉记者|对记者说|说]，[过去|以前|前几年]"
    "{ISSUE}[给生活带来|让日常出行|对工作造成]了[不少|很多|不小的][麻烦|困扰|影响]。",
    "[据了解|记者了解到|据介绍]，{PROJ}[总投资|计划投资|预计投资]{money}，[建成后|完成后|投用后][可|将|预计可]"
    "[服务|覆盖|惠及]{n1000}[余人|多名群众|户家庭]。",
    "[与|和]{zcity}、{zcity}等[城市|地区|地方]相比，{CITY}在{IND}[方面|上][起步较晚|基础较好|增长较快]，"
    "[但|不过|同时][后劲|潜力|空间][较大|依然不小|值得期待]。",
    "[为|为了]{OBJ}，{CITY}还[将|计划|准备][建立|完善|推行][月度通报|定期评估|第三方评价][机制|制度|办法]，"
    "[并|同时][向社会|向市民|在政府网站][公开|公布|发布][进展情况|相关数据|考核结果]。",
    "[不少|一些|部分]{GROUP}[建议|希望|呼吁]，[有关部门|相关部门|政府部门][在|要在|应在][推进|实施|落实]"
    "{PROJ}[的过程中|时|期间][多听|充分听取|认真听取][群众|基层|一线][意见|声音|建议]。",
    "[数据显示|统计数据表明|相关数据显示]，{year}至今，{CITY}{IND}[年均|平均每年][增长|提高]{pct}，"
    "[高于|略高于|接近][全省|全国|同类城市]平均水平。",
    "{OFF_SHORT}[坦言|承认|也表示]，{ISSUE}[成因复杂|由来已久|涉及面广]，[短期内|一时|在短时间内]"
    "[彻底解决|完全消除|根本扭转][并不现实|难度较大|还有困难]，[但|不过][方向是明确的|各项工作正在稳步推进]。",
    "[在|针对]{ISSUE}[方面|问题上]，{DEPT}[已|已经|目前已][会同|联合|协调]{n2}个部门[开展|组织|启动]"
    "[专项整治|联合检查|集中攻坚]，[发现并整改|排查处理|督促解决][问题|隐患|事项]{n100}[个|处|项]。",
    "[今年|本年度|下半年]，{CITY}[还将|计划|将][新建|改造|提升]{PLACE}[等|及周边]{n10}[个|处][重点|民生|配套]"
    "[项目|点位|工程]，[其中|目前]{n2}个[已经开工|进入招标阶段|完成设计]。",
    "{RES_SHORT}[说|表示|笑着说]，[如今|现在|这段时间]{ISSUE}[少了|好多了|有了变化]，[希望|盼着|期待]"
    "{PROJ}[早日|尽快|能够如期][完工|见效|全面铺开]。",
    "[业内人士|有关专家|相关负责人][提醒|指出|分析]，[在|推进]{PROJ}[过程中|的同时]，[还要|也要|更要]"
    "[注意|防范|关注][资金使用|工程质量|后期运营]等[环节|问题|风险]。",
], ZH_SLOTS)

ZH_NEWS_QUOTE = compile_all([
    "“[我们|我们始终|我们一直][把|将]{GROUP}的[需求|意见|获得感][放在|摆在][首位|第一位|突出位置]，"
    "[这次|此次|这一轮][调整|改革|安排][就是|正是|也是][冲着|围绕|针对]{ISSUE}来的。”{OFF_SHORT}说。",
    "“[数据|指标|变化]本身[说明|反映|显示][一部分|了一些]问题，[但|不过][更重要的|关键]是[群众|老百姓|居民]"
    "[的切身感受|是否满意|有没有得到实惠]。”{EXP_SHORT}[说|表示|补充道]。",
    "“[以前|过去|原来][办一件事|跑一趟|解决这个问题][要|得|需要]{n2}[天|趟|个部门]，[现在|如今][方便|省事|快]多了。”"
    "{RES_SHORT}[说|告诉记者|感慨地说]。",
], ZH_SLOTS)

ZH_NEWS_CLOSE = compile_all([
    "[据悉|另悉|记者获悉]，{CITY}[将于|计划于|预计在]{month}[对|就]{PROJ}[开展|组织|进行][中期评估|专项督查|"
    "第二轮意见征集]，[相关|具体][结果|情况|进展]将[及时|适时|第一时间][向社会公布|对外发布|通报]。",
    "[对此|对于后续进展|下一步进展]，本报将[持续关注|跟踪报道|继续关注]。",
], ZH_SLOTS)


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
        "OBJ": _pick(rng, _w("确保各项措施落到实处|让政策更好地惠及群众|提高资金使用效率|防止工作走过场")),
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

ZH_NAME_CHARS = tuple("青云龙白石清安平宁永兴新长东西南北金玉松柳桃花溪泉岭阳明秀丰华嘉福泰康德瑞凤鹤霞翠竹梅兰"
                      "桂榕枫樟橙碧苍澄汇鸣川峰湖湾浦")
ZH_ENC_TYPES: dict[str, dict[str, Any]] = {
    "river": {
        "SUFFIX": ("河", "江", "溪", "水"), "MW": "条",
        "KIND": _w("河流|长江支流|黄河支流|珠江水系河流|山区河流"),
        "FEATURE": _w("峡谷曲折|两岸植被茂密|河床多砾石|沿岸多古渡口|水流湍急|河水清澈见底"),
        "USE": _w("农田灌溉|水力发电|内河航运|城市供水|渔业养殖|生态旅游"),
        "SIZE": compile_all(_w("全长约{n100}公里|流域面积约{n1000}平方公里|年均径流量约{n10}亿立方米"), ZH_SLOTS),
    },
    "mountain": {
        "SUFFIX": ("山", "岭", "峰"), "MW": "座",
        "KIND": _w("山峰|山脉|丘陵山地|喀斯特山地|花岗岩山体"),
        "FEATURE": _w("奇峰怪石|云海景观|原始森林|高山草甸|瀑布群|古树名木"),
        "USE": _w("登山旅游|林业生产|宗教朝拜|科学考察|茶叶种植|药材采集"),
        "SIZE": compile_all(_w("主峰海拔{n1000}米|绵延约{n100}公里|总面积约{n100}平方公里"), ZH_SLOTS),
    },
    "town": {
        "SUFFIX": ("镇", "乡", "村"), "MW": "个",
        "KIND": _w("建制镇|历史文化名镇|乡镇|传统村落|古镇"),
        "FEATURE": _w("明清古建筑群|石板老街|古戏台|宗族祠堂|水乡民居|古城墙遗址"),
        "USE": _w("丝绸织造|制陶|茶叶贸易|酿酒|竹编|渔业"),
        "SIZE": compile_all(_w("户籍人口约{n1000}人|辖区面积约{n100}平方公里|下辖{n10}个行政村"), ZH_SLOTS),
    },
    "lake": {
        "SUFFIX": ("湖", "泊", "海子"), "MW": "个",
        "KIND": _w("淡水湖|高原湖泊|堰塞湖|人工水库|湿地湖泊"),
        "FEATURE": _w("湖水碧绿|候鸟成群|湖岸曲折|芦苇丛生|湖心有岛|倒影如镜"),
        "USE": _w("水产养殖|农田灌溉|观鸟旅游|城市供水|防洪调蓄|休闲垂钓"),
        "SIZE": compile_all(_w("水域面积约{n100}平方公里|平均水深约{n10}米|蓄水量约{n10}亿立方米"), ZH_SLOTS),
    },
    "building": {
        "SUFFIX": ("寺", "塔", "桥", "楼", "书院"), "MW": "座",
        "KIND": _w("古建筑|石拱桥|佛塔|书院建筑|楼阁"),
        "FEATURE": _w("砖木结构|飞檐翘角|石刻精美|保存完整|彩绘斑斓|布局严谨"),
        "USE": _w("宗教活动|讲学藏书|交通往来|登高望远|文物展示|旅游参观"),
        "SIZE": compile_all(_w("占地约{n1000}平方米|通高约{n10}米|现存殿宇{n10}间"), ZH_SLOTS),
    },
}

ZH_ENC_INTRO = compile_all([
    "{NAME}是[位于|地处|坐落于]{PROV}{LOCAL}的一{MW}{KIND}，[以|因]{FEATURE}[而闻名|著称|而知名]。",
    "{NAME}，[位于|地处]{PROV}{LOCAL}，是[当地|该地区|区域内][重要的|著名的|具有代表性的]{KIND}，"
    "[最早|首次][见于|出现在|记载于]{oldyear}前后的[地方志|文献|史料]。",
], ZH_SLOTS)

ZH_ENC_BODY = compile_all([
    "[据|根据]{oldyear}[编修|刊印|成书]的《{BOOK}》[记载|所载|记述]，{NAME}[古称|旧称|又名]{OLDNAME}，"
    "[因|由于]{FEATURE}[得名|而得名]。",
    "{NAME}{SIZE}，[四季|全年|常年][气候温和|景色分明|游人不断]，[是|为]{PROV}[境内|中部|西部][少见的|"
    "重要的|知名的]{KIND}[之一|代表]。",
    "[历史上|自古以来|明清时期]，{NAME}[一带|周边|所在地区][以{USE}闻名|以{USE}为主要产业|凭借{USE}而兴盛]，"
    "[至今|现在|如今][仍|依然][保留|延续|传承]着[相关|不少|丰富的][习俗|遗存|技艺]。",
    "{year}，{NAME}被[列入|评为|公布为][省级|全国重点|市级][文物保护单位|自然保护区|风景名胜区]，"
    "[此后|随后|之后][当地|有关部门|地方政府][开展|实施|启动]了[系统的|大规模的|持续的][保护|修缮|监测]工作。",
    "[学者|研究人员|专家]{person}[在|于]{year}[发表|出版|完成]的[研究|专著|调查报告]中[指出|认为|提出]，"
    "{NAME}[对于|在][研究|了解|认识]{FIELD}[具有|有着][重要|独特|较高]的[价值|意义]。",
    "[每年|每逢|每到]{month}，{NAME}[周边|附近|所在地][都会|常常|往往][举办|举行|迎来][庙会|文化节|赏花活动|"
    "民俗活动]，[吸引|引来][大量|众多|各地][游客|研究者|摄影爱好者]。",
    "[由于|因为|受]{THREAT}[影响|的影响|等因素]，{NAME}[一度|曾经|在一段时期内][面临|遭遇|出现]"
    "[退化|破坏|衰落]，[经过|通过|历经]{n2}年[治理|修复|保护]后[逐步|明显|已经][恢复|好转|改善]。",
    "[关于|有关]{NAME}的[来历|名称由来|起源]，[民间|当地|历来][流传着|有|存在][多种|不同的|好几种]"
    "[说法|传说|解释]，[其中|而][最为流行的|较为可信的|流传最广的][一种|说法]与{LEGEND}[有关|相关]。",
    "[如今|目前|现在]，{NAME}[已经成为|已成为|是]{PROV}[重要的|知名的|热门的]{ROLE}，"
    "[年均|每年|平均每年][接待|吸引][游客|访客]{n10}万人次[左右|以上]。",
    "[从|在]{FIELD}[角度|视角|层面]看，{NAME}[保存|记录|反映]了[较为完整的|丰富的|大量的][信息|资料|证据]，"
    "[为|对][相关研究|后人研究|学术界][提供了|留下了][宝贵|重要|难得的][材料|线索|样本]。",
    "[清代|民国时期|宋代|明代][文人|诗人|地理学家]{person}[曾|先后|多次][游历|考察|到访]{NAME}，"
    "[留下了|写下了|撰写了][诗文|游记|考察笔记][数篇|多篇|若干]，其中[部分|不少|一些][至今仍|今天依然][广为传诵|收录于地方文献]。",
    "{year}[前后|以后|起]，{LOCAL_SHORT}[对|围绕]{NAME}[周边|沿线|附近][进行了|实施了|完成了][道路|环境|配套设施]"
    "[改造|整治|提升]，[游客|居民|访客][往来|出行|参观][更加|越发][便利|方便]。",
    "在{year}[开展的|进行的|完成的][全国|全省|第三次][文物普查|资源调查|地名普查]中，{NAME}"
    "[被|得到][详细|重新|系统][登记|测绘|记录]，[相关|有关][档案|资料|图纸][保存在|收藏于|存放于]{PROV}[档案馆|图书馆|博物馆]。",
    "[当地|周边|附近]居民[习惯|通常|一般][把|将]{NAME}[称作|叫作|唤作]“{NICK}”，[这个|这一][称呼|叫法|俗称]"
    "[据说|相传|传说]与{LEGEND}[有关|的故事有关|相关]。",
    "[近年来|最近几年|这些年]，[有关部门|当地政府|管理机构][在|对]{NAME}[设立了|建立了|安装了][监测站|保护标志|"
    "解说牌]，[并|还|同时][组织|招募|培训][志愿者|讲解员|巡护员][开展|进行|负责][巡查|讲解|科普]工作。",
], ZH_SLOTS)

_ZH_BOOKS = _w("府志|县志|水经注疏|方舆纪要|州志|一统志|游记|山川考|风物志")
_ZH_LEGENDS = _w("一位古代高僧|一对恩爱夫妻|一位清官|一次洪水|一场战役|一位采药老人|一只白鹤|一位书生")
_ZH_THREATS = _w("过度开发|洪水侵袭|战乱|自然风化|城市扩张|水土流失|违规采砂|游客过多")
_ZH_FIELDS = _w("地方历史|生态环境|古代建筑|民俗文化|地质演变|水利史|生物多样性|区域经济史")
_ZH_ROLES = _w("旅游目的地|科普教育基地|文化地标|生态保护区|研学基地|休闲去处")
_ZH_NICKS = _w("小江南|老地方|仙人台|镜子|绿宝石|白龙|聚宝盆|望乡台")


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
        "LOCAL": county + _pick(rng, ("境内", "西北部", "东南部", "北部山区", "南部", "城郊")),
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

ZH_FORUM_TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "装修": {"ITEM": _w("地暖|橱柜|瓷砖|乳胶漆|防水层|吊顶|木地板|淋浴房"),
             "PROBLEM": _w("墙面开裂|地板起拱|卫生间返味|瓷砖空鼓|甲醛味道散不掉|吊顶发霉"),
             "ACTION": _w("重新做了闭水试验|开窗通风了一个月|找师傅补了缝|换了一家施工队|买了检测仪|加装了新风")},
    "养猫": {"ITEM": _w("猫砂盆|自动喂食器|猫粮|猫抓板|饮水机|航空箱|猫爬架"),
             "PROBLEM": _w("不爱喝水|掉毛严重|乱尿|软便|半夜跑酷|见人就躲"),
             "ACTION": _w("换了猫粮|多放了几个水碗|带去医院做了检查|每天陪玩半小时|调整了喂食时间|换了猫砂")},
    "跑步": {"ITEM": _w("跑鞋|运动手表|心率带|压缩袜|护膝|腰包"),
             "PROBLEM": _w("膝盖外侧疼|配速提不上去|跑完小腿酸胀|心率偏高|脚底起泡|岔气"),
             "ACTION": _w("降低了跑量|加了力量训练|换了跑鞋|调整了步频|每周休息两天|跑前认真热身")},
    "摄影": {"ITEM": _w("定焦镜头|三脚架|微单相机|滤镜|闪光灯|相机包"),
             "PROBLEM": _w("照片发灰|夜景噪点多|对焦不准|高光过曝|画面发虚|色彩偏黄"),
             "ACTION": _w("改用RAW格式拍摄|提高了快门速度|用了三脚架|清理了传感器|做了包围曝光|校准了显示器")},
    "电脑": {"ITEM": _w("显卡|电源|主板|散热器|固态硬盘|内存条|显示器"),
             "PROBLEM": _w("开机蓝屏|玩游戏掉帧|温度过高|风扇噪音大|无故重启|硬盘读写很慢"),
             "ACTION": _w("更新了驱动|重新插拔了内存|换了硅脂|重装了系统|更新了主板固件|换了电源线")},
    "育儿": {"ITEM": _w("婴儿车|安全座椅|奶瓶|辅食机|绘本|儿童床"),
             "PROBLEM": _w("晚上不肯睡觉|挑食|总是咳嗽|不愿意去幼儿园|爱发脾气|长牙发烧"),
             "ACTION": _w("固定了作息时间|每天睡前讲绘本|咨询了儿科医生|减少了看屏幕的时间|多带孩子出门|调整了饮食")},
    "钓鱼": {"ITEM": _w("鱼竿|渔轮|浮漂|鱼线|饵料|钓箱"),
             "PROBLEM": _w("一直不上鱼|频繁切线|浮漂吃铅不准|小鱼闹窝|挂底严重|鱼一拉就跑"),
             "ACTION": _w("换了细一点的子线|调整了调目|换了钓点|改用商品饵|打了一个小时窝|早上五点就出发")},
    "烘焙": {"ITEM": _w("烤箱|厨师机|发酵篮|面粉|黄油|模具"),
             "PROBLEM": _w("面包发不起来|蛋糕回缩|饼干摊开|表皮太硬|组织粗糙|烤不熟"),
             "ACTION": _w("延长了发酵时间|换了高筋面粉|降低了烤箱温度|买了烤箱温度计|减少了糖量|改用新鲜酵母")},
    "自驾": {"ITEM": _w("行车记录仪|车载冰箱|备胎|导航|充气泵|帐篷"),
             "PROBLEM": _w("高原反应|山路晕车|充电桩难找|油耗偏高|轮胎漏气|订不到住宿"),
             "ACTION": _w("提前规划了路线|多备了一箱水|在县城休整了一天|换了全地形胎|下载了离线地图|错峰出发")},
    "种花": {"ITEM": _w("月季|绿萝|多肉|君子兰|茉莉|花盆|营养土"),
             "PROBLEM": _w("叶子发黄|烂根|长虫|不开花|徒长|叶尖干枯"),
             "ACTION": _w("换了透气的盆|控制了浇水|挪到了阳台|施了一次薄肥|喷了杀虫药|剪掉了病叶")},
}


_ZH_HANDLE_A = tuple("小大老阿")
_ZH_HANDLE_B = _w("猫|熊|鱼|虎|鹿|兔|狐|鹰")


def _zh_handle(rng: Random) -> str:
    return f"{_pick(rng, _ZH_HANDLE_A)}{_pick(rng, _ZH_HANDLE_B)}{_pick(rng, ZH_GIVEN)}"


ZH_FORUM_SLOTS: Slots = {**ZH_SLOTS, "handle": _zh_handle}

ZH_FORUM_OPEN = compile_all([
    "[大家好|各位好|各位坛友好]，[我家|我这边|我的]{ITEM}[用了|买了|装了]{n2}[个月|年]，[最近|这几天|这段时间]"
    "[发现|出现了|总是]{PROBLEM}，[想请教一下|想问问|求助一下][大家|各位|有经验的朋友]。",
    "[潜水|围观|看帖]很久了，[第一次|头一回|今天第一次]发帖，[主要是|就是想|想]问问{PROBLEM}[到底|究竟|应该]"
    "[怎么处理|怎么办|从哪里入手]。",
    "[说一下|分享一下|记录一下]我[最近|这半年|这几个月][遇到的|碰到的|处理的]{PROBLEM}，[顺便|也|同时]"
    "[问问|请教|听听][大家的|各位的][看法|建议|经验]。",
], ZH_FORUM_SLOTS)

ZH_FORUM_BODY = compile_all([
    "[之前|前段时间|上个月]我已经{ACTION}，[也|还][试着|尝试]{ACTION}，[但是|可是|不过][效果|改善|变化]"
    "[不太明显|有限|时好时坏]。",
    "[我住在|我在|坐标]{zcity}，[这边|这里|本地][最近|这阵子|今年][天气|气候][比较|特别|有点][潮湿|干燥|闷热|冷]，"
    "[不知道|不确定|也不清楚][跟这个|和这个|与此][有没有关系|是否有关|有关系吗]。",
    "[朋友|同事|家里人][说|觉得|认为]可能是{ITEM}的[问题|原因|质量问题]，[但|可|不过]我[觉得|感觉|怀疑]"
    "[更可能|应该|多半]是[自己|我][操作|使用|安装]的[方法|习惯|方式][不对|有问题|不太规范]。",
    "[网上|论坛里|视频里][有人说|看到有人讲|有帖子说]{ACTION}[就能|可以|能够][解决|改善|缓解]，"
    "[但|不过|可是][我|本人][担心|怕|不确定][会不会|是否|能不能][适合|适用于|用在][我这种|我的]情况。",
    "[目前|现在|暂时]还不想[换|再买|重新买]一个{ITEM}，[毕竟|因为|主要是][价格|成本|花费][不低|不便宜|也不少]，"
    "[想先|打算先|希望先][找到|弄清|排查出][真正的|根本|具体][原因|问题所在]。",
    "[补充一下|再说明一下|顺便说一句]，{PROBLEM}[一般|通常|多半][出现在|发生在|是在][早上|晚上|周末|下雨天]，"
    "[平时|其他时间|别的时候][基本|还算|倒是][正常|没事|挺好]。",
    "[感谢|谢谢|多谢][各位|大家|坛友们][的回复|的建议|耐心解答]，[等我|我打算|这周末]{ACTION}[之后|以后|后]"
    "[再来|会来|一定来][反馈|更新|汇报][结果|情况|进展]。",
    "[说实话|老实说|讲真]，[这个|这件|这种][问题|事情|情况][困扰|折腾|烦]了我[好久|很久|大半年]，"
    "[希望|但愿|真心希望][有|能有][懂行的|经验丰富的|专业的][朋友|师傅|坛友][指点|帮忙看看|给点思路]。",
    "[另外|还有|此外]，[想问问|请问|顺便问下][大家|各位]{ITEM}[一般|平时|通常][多久|多长时间|隔多久]"
    "[保养|清理|更换][一次|一回]？",
    "[更新|追加|编辑]：[按照|根据|听了]{handle}[的建议|说的方法|的办法]{ACTION}，[现在|目前|这两天]"
    "[情况|状态][好了很多|明显改善|稳定多了]。",
    "[前年|以前|刚入坑的时候]我[用过|买过|试过]一个[便宜的|二手的|入门款]{ITEM}，[反而|倒是|居然][从来没有|很少|"
    "没怎么]出现过{PROBLEM}，[所以|因此][怀疑|觉得|猜测]是[新买的|现在这个][东西|配件|设备][有问题|不太对]。",
    "[本地|附近|楼下]的[店家|师傅|老板][说|告诉我|认为]{PROBLEM}[很常见|很正常|不算什么]，[可是|但是|不过]"
    "[以前|去年|刚开始][根本|完全|从来][没有|不会][这样|这种情况|出现过]。",
    "[预算|经费|钱包][有限|不多|比较紧]，[如果|要是][花|控制在]{n10}[块|元]以内[能|可以][解决|搞定]"
    "[就|那就][最好|太好了|再好不过]了。",
    "[家里人|老婆|老公|室友][总说|经常吐槽|开玩笑说]我在[这件事|这个爱好|这上面][花的|投入的][时间|精力|钱]"
    "[太多|有点多|比上班还多]，[想想|仔细想想|说实话][也|确实|好像][有道理|是这样|没错]。",
    "[图片|照片|视频][放在|发在|贴在][二楼|下面|楼下]了，[大家|各位][可以|能够|不妨][看看|瞧瞧|帮忙看看]"
    "[具体|实际|现在的][情况|状态|样子]。",
    "[每次|每回|只要][仔细|认真|凑近][检查|观察|查看]{ITEM}，[表面上|外观上|看起来][都|并][没有|看不出][什么|明显的]"
    "[异常|问题|毛病]，[这就|所以][更|越发][让人|叫人][摸不着头脑|想不明白|着急]了。",
    "[新手|刚入门|入坑不久]的时候[走过|踩过|犯过][不少|很多|好几次][弯路|坑|错误]，[所以|因此][这次|这回]"
    "[想|希望|打算][先|多][听听|问问|了解][过来人|老手|前辈]的[意见|经验|看法]再[动手|下单|决定]。",
], ZH_FORUM_SLOTS)

def gen_forum_zh(rng: Random) -> DocSpec:
    ctx: dict[str, Any] = dict(ZH_FORUM_TOPICS[_pick(rng, sorted(ZH_FORUM_TOPICS))])
    n_body = 6 + int(rng.random() * 6)
    blocks = _prose_blocks(rng, ZH_FORUM_OPEN, ZH_FORUM_BODY, (), (), n_body, (2, 3))
    return DocSpec(blocks, ctx, "", None, None, "zh", "forum")


# ----------------------------------------------------------------------------------------------
# Low quality: sales copy, clickbait, listicles, keyword stuffing, fragments (domain flavoured)

LOW_SLOTS: Slots = {
    **COMMON_EN,
    "hype": _w("amazing|incredible|unbelievable|insane|mind-blowing|jaw-dropping|epic|ultimate|must-see|"
               "game-changing|crazy|awesome|super|fantastic|stunning|top secret"),
    "cta": _w("Click here now|Buy now|Order today|Shop the sale|Grab yours today|Sign up free|"
              "Check it out now|Don't miss out|Act fast|Claim your discount|Tap the link|Join free today"),
    "off": _w("50% off|70% off|buy one get one free|free shipping|half price|up to 80% off|"
              "a free gift|double points|a bonus voucher|cashback|two for one|a mystery gift"),
    "emph": _w("!!!|!!|!|! Seriously!|! Wow!|! Trust us!|! LOL!|! OMG!"),
    "brand": lambda rng: _site(rng),
}

LOW_TOPIC_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "news": {"KW": _w("""celebrity gossip|breaking news|election scandal|shocking video|viral story|weather warning|
                      crime shock|royal news|mayor scandal|traffic chaos|reality star drama|lottery winner|
                      football transfer rumour|politician meltdown|storm footage|secret wedding|court drama|
                      tv host feud|influencer scandal|school bus crash""")},
    "forum": {"KW": _w("""cheap followers|free gift cards|crypto signals|weight loss pills|best vpn|free phone|
                       easy money|cheap watches|game coins|online casino bonus|forex robot|miracle diet|
                       discount sneakers|free movie streams|essay writing service|cheap flights|
                       hair growth serum|instant loans|replica bags|gaming account boost""")},
    "encyclopedia": {"KW": _w("""river facts|mountain photos|town history|animal facts|famous people|mineral prices|
                              travel tips|fun facts|top places|cool rocks|weird animals|castle tours|
                              ancient secrets|lost cities|gemstone deals|holiday spots|bird pictures|
                              history trivia|crystal healing|map posters""")},
}

LOW_SALESY = compile_all([
    "Looking for the [best|cheapest|hottest] {KW} [deals|offers|bargains] in {year}? You are in the right "
    "place{emph}",
    "Our {hype} {KW} [collection|range|bundle] is [on sale now|flying off the shelves|back in stock] with {off}, "
    "so [hurry|be quick|act now] before it is gone{emph}",
    "[Thousands of|Millions of|So many] [happy customers|fans|readers] [already love|swear by|can't stop "
    "talking about] our {KW} and you will too{emph}",
    "{cta} and get {off} on [every|your first|any] {KW} [order|purchase|package] today{emph}",
    "[Why wait|Why pay more|Don't settle] when you can get the [best|top rated|number one] {KW} at the "
    "[lowest|cheapest|best] price [online|anywhere|guaranteed]{emph}",
    "[This|Our] {hype} [offer|deal|promotion] [ends|expires|closes] [tonight|this weekend|in {n2} hours], "
    "so {cta} and [save big|save more|save today]{emph}",
    "[Best|Top|Number one] {KW} [website|store|shop] for [everyone|the whole family|beginners and experts] "
    "with {off} [and|plus] [fast delivery|no hidden fees|a money back guarantee]{emph}",
    "[Trust us|Believe us|Seriously], this is the [only|last|best] {KW} [guide|deal|product] you will "
    "[ever need|ever buy|need this year]{emph}",
    "[Sign up|Subscribe|Join] [today|now|for free] and [unlock|get|receive] [exclusive|secret|VIP] {KW} "
    "[deals|tips|bonuses] [every day|every week|straight to your inbox]{emph}",
    "[Everyone is|All your friends are|Experts are] [talking about|sharing|buying] this {hype} {KW} "
    "[trick|secret|hack] and [you won't believe|you can't imagine|nobody expected] [the results|what happens "
    "next|how easy it is]{emph}",
    "{brand} [has|brings you|offers] the {hype} {KW} [you have been waiting for|everyone wants|of the year]"
    "{emph}",
    "[Limited|Only] {n10} {KW} [packages|bundles|spots] [left|remaining|available] at {brand}, {cta}{emph}",
    "[Get|Grab|Score] {off} [when you|if you] [order|buy|sign up] before {weekday} with code {CODE}{emph}",
    "[No|Zero] [risk|catch|hidden costs], [just|only] {hype} {KW} [delivered|sent|shipped] to your door in "
    "{n2} days{emph}",
    "[Our|The] {KW} [is|are] [rated|voted|ranked] [number one|the best|five stars] by [over|more than] "
    "{n1000} [buyers|users|fans] in {city}{emph}",
    "[You deserve|Treat yourself to|Reward yourself with] the {hype} {KW} [today|this week|right now], "
    "because [you're worth it|life is short|why not]{emph}",
    "[Stop|Quit|Forget] [wasting money|overpaying|searching] on [boring|old|cheap] {KW} and [switch|upgrade|"
    "come] to {brand} [today|now]{emph}",
    "[Tell|Send|Show] [your friends|your family|everyone] [about|this link for] {brand} and [both of you|you "
    "both|all of you] get {off}{emph}",
    "[We|Our team] [guarantee|promise] the [lowest|best|cheapest] {KW} [prices|deals] in {city} or your "
    "money back{emph}",
    "[Hurry|Quick|Fast], the {hype} {KW} [sale|event|giveaway] [is almost over|ends soon|won't last]{emph}",
], LOW_SLOTS)

LOW_CLICKBAIT = compile_all([
    "You won't believe what happened in {city} [today|this week|last night]{emph}",
    "[Shocking|Unbelievable|Insane] [photos|video|footage] show the {hype} {KW} [everyone|the whole internet|"
    "the whole town] is talking about{emph}",
    "[Doctors|Experts|Officials|Neighbours] [hate|fear|can't explain] this {hype} {KW} [secret|trick|"
    "story]{emph}",
    "[Number|Item|Story] {n2} will [blow your mind|leave you speechless|make you cry]{emph}",
    "[Find out|See|Discover] [why|how|what] {first} from {city} [did|said|found] [this|something so "
    "crazy|the unthinkable]{emph}",
    "[Share|Like|Repost] this [now|before it gets deleted|with your friends] [if you agree|to spread the "
    "word|so everyone knows]{emph}",
    "[Breaking|Urgent|Just in]: {KW} in {city} [goes viral|shocks everyone|breaks the internet]{emph}",
    "[The|This] {hype} [truth|story|secret] about {KW} [they don't want you to know|nobody tells you|will "
    "change everything]{emph}",
    "{first} {last} [just|finally|secretly] [revealed|admitted|confessed] the {hype} {KW} [secret|truth|"
    "story] and [fans|people|the internet] [are losing it|can't cope|went crazy]{emph}",
    "[What|How|Why] this {city} [mum|dad|teenager|grandma] [did|found|said] [next|about {KW}|at the end] "
    "[is|was] [pure genius|totally insane|so wrong]{emph}",
    "[Before|After] [photos|pictures|clips] of the {KW} [story|scandal|drama] [leave|left] [everyone|fans|"
    "viewers] [speechless|in tears|shocked]{emph}",
    "[Scroll|Keep reading|Wait] [down|until the end|for it] to see the {hype} [twist|ending|reveal]{emph}",
], LOW_SLOTS)

LOW_LIST_TITLE = compile_all([
    "Top {NUM} {hype} {KW} [Tips|Deals|Secrets] You [Need|Must See] [In {year}|Right Now]",
    "{NUM} [Reasons|Ways|Things] {KW} Will [Change Your Life|Make You Rich|Blow Your Mind]",
    "[The|Our] {NUM} [Best|Cheapest|Craziest] {KW} [Ever|Online|This Week]{emph}",
], LOW_SLOTS)
LOW_LIST_ITEM = compile_all([
    "{hype} {KW} [tip|hack|deal]",
    "[Best|Top|Cheapest] {KW} [ever|online|right now]",
    "{KW} [for beginners|for free|in {city}]",
    "[Why|How] {KW} [works|is the best|changed my life]",
    "{off} on {KW}",
    "[Secret|Hidden|Amazing] {KW} [trick|site|deal]",
    "{KW} from {brand}",
    "[Only|Just] {n10} dollars for {KW}",
    "{KW} [that|which] [celebrities|experts|doctors] [love|hate|use]",
    "[The|That] {hype} {KW} [nobody|everyone] [talks about|knows]",
], LOW_SLOTS)
_LIST_NUMS = tuple(f"{i}. " for i in range(1, 21))

LOW_FRAGMENTS = compile_all([
    "[Great|Huge|Massive] [deals|savings|prices]", "[Click|Tap|Press] here", "[Limited|Special] [offer|time]",
    "{KW} [now|today|online]", "[Free|Fast] [shipping|delivery]", "[Best|Top] {KW}", "{off}",
    "[Shop|Buy|Order] now", "{hype} {KW}", "[New|Hot|Trending] {KW}", "[Sale|Deals] in {city}",
    "[Call|Text|Message] us [today|now]", "{brand}", "[Only|Just] {n10} left", "[Code|Coupon] {CODE}",
    "{KW} {year}", "[Open|Available] {weekday}", "[Visit|See] {brand} [now|today]",
], LOW_SLOTS)
_KW_SUFFIX = ("", " online", " cheap", " best", " free", " 2024", " near me", " deals", " sale", " reviews")


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
    "hype": _w("震惊|重磅|速看|必看|太牛了|绝了|史上最全|超实用|独家揭秘|千万别错过"),
    "cta": _w("赶紧收藏|马上转发|点击关注|立即抢购|戳这里|赶快下单|速速围观|扫码了解"),
    "emph": _w("！|！！|！！！|，太好用了！|，不看后悔！"),
}
ZH_LOW_KW: dict[str, tuple[str, ...]] = {
    "news": _w("明星八卦|内幕消息|惊天大案|暴涨行情|神秘事件|网红打卡地|退休金|房价"),
    "forum": _w("兼职赚钱|减肥神器|刷粉丝|理财秘籍|免费流量|手机靓号|游戏外挂|美白产品"),
    "encyclopedia": _w("冷知识|历史秘闻|旅游攻略|奇闻异事|养生知识|风水知识|成语故事|地理趣闻"),
}

ZH_LOW_SENT = compile_all([
    "{hype}{emph}{zcity}的{KW}[竟然|原来|居然][是这样|藏着这么多秘密|这么简单]{emph}",
    "[99%的人|大部分人|很多人]都不知道的{KW}[技巧|秘诀|真相]，[看完|学会|知道后]你就[赚到了|明白了|会感谢我]{emph}",
    "[今天|这次|本期]给大家[整理|分享|盘点]了{n2}个{KW}[小技巧|干货|必备清单]，{cta}{emph}",
    "{KW}[限时|今日|本周][特价|秒杀|优惠]，[错过|不抢][再等一年|就没了|后悔一辈子]{emph}",
    "[专家|老中医|业内人士][都在用|偷偷推荐|极力推荐]的{KW}[方法|神器|秘方]，[简单|一学就会|效果惊人]{emph}",
    "[转发|分享]给[身边的朋友|家人|群里的人]，[让更多人|大家一起|好东西要]{KW}{emph}",
    "[点击|戳|扫码][下方链接|文末图片|二维码]，[立即|马上|免费][领取|获取|查看]{KW}[资料|福利|攻略]{emph}",
    "[看到最后|不看不知道|一看吓一跳]，{KW}[原来|竟然][这么|如此][重要|赚钱|可怕]{emph}",
], ZH_LOW_SLOTS)


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

_LOREM = _ws("""lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut
labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip
ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur
excepteur sint occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum""")
SPAM_COOKIE = _w("""We use cookies to improve your experience on SITE.|By continuing to browse SITE, you agree
to our use of cookies.|Accept all cookies|Manage cookie preferences for SITE|This site uses cookies for analytics
and personalised content.|Read the SITE Cookie Policy and Privacy Policy for more information.|Reject
non-essential cookies|Cookie settings|SITE and our NUM partners store cookies on your device.|Your privacy
matters to SITE, see our Terms of Use.|Cookies help us deliver our services in CITY.|Allow cookies from SITE?|
Necessary cookies only|We updated our cookie policy on DATE.""")
SPAM_JS = _w("""Please enable JavaScript to view SITE.|JavaScript is disabled in your browser.|SITE requires
JavaScript to function properly.|For the best experience, turn on JavaScript and reload.|Your browser does not
support JavaScript.|Enable JavaScript and cookies to continue to SITE.|JavaScript is required to view KW.|
Checking your browser before accessing SITE.|This page needs JavaScript, error code NUM.""")
SPAM_NAV = _w("""Home|About us|Contact|Login|Register|Sitemap|Careers|Help centre|Subscribe|Search|Menu|
Back to top|Share|Follow us|Newsletter|Shop|Blog|FAQ""")
SPAM_HASHTAGS = _w("""#deal|#sale|#promo|#cheap|#discount|#free|#win|#giveaway|#follow|#like|#viral|#trending|
#musthave|#shopnow|#bestprice|#hot|#new|#love""")
ZH_SPAM_LINES = _w("""点击领取新人红包|免费领取会员|加微信领取优惠券|限时秒杀全场一折起|扫码关注领取福利|
添加客服微信了解详情|注册即送888元大礼包|今日特价仅剩最后几件|转发本条即可免费领取|点击下方链接立即下载|
免费试用七天不满意退款|加群领取独家资料""")
ZH_SPAM_NAV = _w("首页|登录|注册|联系我们|关于我们|网站地图|帮助中心|返回顶部|意见反馈|下载APP")


def _site(rng: Random) -> str:
    return (f"{_pick(rng, ORG_ADJ)}{_pick(rng, ORG_NOUN)}"
            f"{_pick(rng, ('Deals', 'Mart', 'Hub', 'Zone', 'Online', 'Direct', 'Store', 'Daily', 'Plus'))}")


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


SHORT_EN = compile_all([
    "Page not found.", "[Home|Menu] | [About|News] | [Contact|Login]", "Loading...",
    "Item {n1000} is out of stock.", "Sorry, this page has moved to {city}.", "Subscribe to our newsletter",
    "Log in to continue", "404 Not Found", "Thanks for visiting!", "Comments are closed.",
    "[Posted|Updated] {month} {n10}, {year}", "No results for {first}.", "Access denied.", "Click to enlarge",
    "[Weather|Traffic] in {city}: see updates.", "This thread has been [locked|archived].", "bump",
    "[Great|Nice|Thanks for the] post, {first}!", "See [photos|video] from {city}.", "Coming soon.",
], LOW_SLOTS)
SHORT_ZH = compile_all([
    "页面不存在", "[首页|登录] | [注册|帮助]", "加载中……", "该帖子已被删除", "暂无评论", "返回首页",
    "[顶|沙发|围观]", "{zcity}[天气|交通]详情请点击", "请登录后查看", "[谢谢|感谢]分享！", "此内容已过期",
    "商品编号{n1000}已下架",
], ZH_LOW_SLOTS)


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
    ("en", "news"): _w("""according to people familiar with the discussions|officials confirmed later that day|
        as several local papers reported|though the details remain unclear|despite earlier objections|
        a figure disputed by the opposition|as expected by most observers|after a lengthy debate|
        pending a final review|sources at the council said"""),
    ("en", "encyclopedia"): _w("""according to some accounts|though sources differ on the date|
        as recorded in later surveys|a view shared by several historians|although this remains uncertain|
        as noted in regional guides|based on limited evidence|in most published descriptions"""),
    ("en", "forum"): _w("""if that makes any sense|at least in my experience|for what it's worth|
        as far as I can tell|or so I have been told|unless I am missing something|which surprised me|
        to be honest"""),
    ("en", "math"): _w("""as expected|which is easy to verify|as the diagram would show|
        rounding only at the end|using the same method as before|which completes this step"""),
    ("zh", "news"): _w("据了解|记者注意到|有关负责人介绍|这一点备受关注|相关工作正在推进|市民对此反响积极"),
    ("zh", "encyclopedia"): _w("据地方志记载|一说如此|学界对此尚有争议|当地至今流传此说|相关研究仍在进行"),
    ("zh", "forum"): _w("仅供参考|个人经验|不知道对不对|说得不对请指正|我是这么理解的|供大家参考"),
}
_CODE_COMMENTS = _w("""TODO: handle the empty case|keep this in sync with the importer|
cheap check before the loop|see issue tracker for details|kept for backwards compatibility|
tested with the sample data|this mirrors the server logic|revisit once the schema settles""")


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

_SITE_WORDS = _ws("courier herald gazette ledger chronicle tribune observer post times record bulletin "
                  "dispatch journal sentinel mercury")
_ZH_PINYIN = _ws("""beijing shanghai guangzhou shenzhen hangzhou nanjing chengdu wuhan xian changsha
zhengzhou qingdao xiamen hefei kunming dalian ningbo wuxi fuzhou jinan suzhou tianjin""")
_SLUG_WORDS = _ws("""council plan budget report school river road housing water energy review vote park
hospital station market festival bridge project survey museum tram port""")


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
