"""Clean-up of generated text, as named steps a recipe lists in its ``postprocess:`` key.

Why steps and not one function per recipe: the Nemotron-CC tasks share most of their clean-up (lead-ins,
chatty preambles, markdown, quotes) and differ in one parsing step (QA pairs, bullets, passage labels), and
user recipes should be able to reuse them from YAML. Every step is pure text -> text; a step that finds the
output unusable raises :class:`Drop` with a cause, which the stage records (never a silent empty document).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Drop(Exception):
    """The output is not usable; ``cause`` is a short machine-friendly name (``no_qa_pairs``, ...)."""

    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause


@dataclass(frozen=True)
class PostContext:
    """What a step may look at besides the text: the source chunk and a per-request seed."""

    source: str = ""
    source_tokens: int = 0
    seed: int = 0


Step = Callable[..., str]
STEPS: dict[str, Step] = {}


def step(name: str) -> Callable[[Step], Step]:
    def register(fn: Step) -> Step:
        STEPS[name] = fn
        return fn

    return register


# -- lead-ins and chatter ---------------------------------------------------------------------------------

_PREAMBLE_START = re.compile(
    r"^\s*(sure|certainly|of course|okay|ok|absolutely|great|alright|here(?:'s| is| are)|below is|below are|"
    r"the following|i have|i've|as requested|好的|当然|以下是|下面是)\b",
    re.IGNORECASE,
)
_POSTAMBLE = re.compile(
    r"^\s*(i hope this|let me know|feel free to|if you (?:need|have|would)|note:|please note|"
    r"(?:this|the above) (?:rewritten|rephrased|paraphrased|condensed) (?:text|version)|希望)",
    re.IGNORECASE,
)


@step("strip_lead_in")
def strip_lead_in(text: str, ctx: PostContext, phrases: list[str] | tuple[str, ...] = ()) -> str:
    """Remove a fixed lead-in the prompt asked for (and anything chatty before it, within the opening)."""
    head = text[:400]
    for phrase in phrases:
        pattern = r"[\s*_#>\"'`]*".join(re.escape(w) for w in phrase.split())
        m = re.search(r"[*_\"'`]*" + pattern + r"[*_\"'`]*[:：]?[*_]*\s*", head, re.IGNORECASE)
        if m:
            return text[m.end() :].lstrip()
    return text


@step("strip_preamble")
def strip_preamble(text: str, ctx: PostContext) -> str:
    """Drop an opening line of chatter ("Sure! Here is the rewritten text:") and closing pleasantries."""
    lines = text.strip().split("\n")
    while lines and (not lines[0].strip() or (_PREAMBLE_START.match(lines[0]) and
                                              lines[0].rstrip().rstrip("*").endswith((":", "：", "!")))):
        lines.pop(0)
    if lines:
        first = lines[0]
        m = re.match(r"^\s*(sure|certainly|of course|okay|absolutely)[!.,]\s*", first, re.IGNORECASE)
        if m:
            lines[0] = first[m.end() :]
    while lines and (not lines[-1].strip() or _POSTAMBLE.match(lines[-1])):
        lines.pop()
    return "\n".join(lines).strip()


_META = re.compile(
    r"^\s*(?:(?:the|this|my)\s+(?:above\s+|below\s+|original\s+|rewritten\s+|revised\s+|rephrased\s+)?"
    r"(?:passage|text|article|version|rewrite)\b[^.\n]{0,80}?\b(?:was|has been|is|have been)\s+"
    r"(?:edited|rewritten|revised|rephrased|condensed|improved)|in this (?:revised|rewritten|rephrased) version"
    r"|(?:in (?:the|this) (?:article|passage|text),?\s+)?(?:we|i)(?:'ve| have)?\s+"
    r"(?:revised|rewritten|rephrased|edited|condensed)\s+the\s+(?:passage|text|article))",
    re.IGNORECASE)


@step("drop_meta")
def drop_meta(text: str, ctx: PostContext) -> str:
    """Reject an answer that talks about the rewrite ("The passage below was edited for clarity ...")
    instead of being one: small models do this, and it is not the text asked for."""
    if _META.match(text):
        raise Drop("meta_commentary", text[:80])
    return text


# -- formatting -------------------------------------------------------------------------------------------


@step("strip_markdown")
def strip_markdown(text: str, ctx: PostContext) -> str:
    """Plain prose: no headings marks, emphasis, code marks, links, images or rules (lists are kept)."""
    out = []
    for line in text.split("\n"):
        if re.fullmatch(r"\s*(```.*|[-*_=]{3,})\s*", line):
            continue
        line = re.sub(r"^\s{0,3}#{1,6}\s+", "", line)
        line = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", line)
        line = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line)
        line = re.sub(r"(\*\*|__)(.+?)\1", r"\2", line)
        line = re.sub(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])", r"\1", line)
        line = re.sub(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])", r"\1", line)
        line = re.sub(r"`([^`]*)`", r"\1", line)
        out.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


_QUOTE_PAIRS = [('"', '"'), ("'", "'"), ("\u201c", "\u201d"), ("\u2018", "\u2019"), ("\u300c", "\u300d"),
                ("\u00ab", "\u00bb")]


@step("strip_quotes")
def strip_quotes(text: str, ctx: PostContext) -> str:
    """Remove quotes wrapping the whole output (models like to quote a rewrite)."""
    t = text.strip()
    changed = True
    while changed and len(t) >= 2:
        changed = False
        for a, b in _QUOTE_PAIRS:
            inner = t[len(a) : -len(b)]
            if t.startswith(a) and t.endswith(b) and a not in inner and b not in inner:
                t, changed = inner.strip(), True
    return t


_BULLET = re.compile(r"^(\s*)(?:[-*+\u2022\u00b7\u25aa\u25cf\u2013\u2014\u2023\u2043]|\d{1,3}[.)]|[a-z][.)])\s+")


@step("normalize_bullets")
def normalize_bullets(text: str, ctx: PostContext, require: bool = True) -> str:
    """Every list item as ``- item`` (nested items indented by two spaces); headings kept as plain lines."""
    out, bullets = [], 0
    for line in text.split("\n"):
        if not line.strip():
            continue
        m = _BULLET.match(line)
        if m:
            depth = min(len(m.group(1).expandtabs(4)) // 2, 3)
            rest = re.sub(r"^\d{1,3}[.)]\s+", "", line[m.end() :])  # "- 1. item": one marker is enough
            item = strip_markdown(rest, ctx).strip()
            line_out = "  " * depth + "- " + item
            if item and line_out not in out:  # a repeated item (a looping model) is kept once
                out.append(line_out)
                bullets += 1
        else:
            out.append(strip_markdown(line, ctx).strip())
    if require and bullets == 0:
        raise Drop("no_bullets", "no list items found")
    return "\n".join(out).strip()


_PASSAGE_LABEL = re.compile(
    r"^\s*[*_#\s]*(?:textbook\s+|knowledge\s+)?(?:passage|section|excerpt|段落|文章)\s*\d*\s*[:：.]?[*_\s]*(?:[:：][*_\s]*)?",
    re.IGNORECASE,
)


@step("remove_passage_labels")
def remove_passage_labels(text: str, ctx: PostContext) -> str:
    """Drop labels like ``Passage 1:`` or ``**Textbook passage:**`` the model put before each passage."""
    out = []
    for line in text.split("\n"):
        m = _PASSAGE_LABEL.match(line)
        if m and (m.end() == len(line) or line[:m.end()].rstrip().endswith((":", "：", "*"))):
            rest = line[m.end() :].strip()
            if rest:
                out.append(rest)
            elif out and out[-1] != "":
                out.append("")
            continue
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


# -- QA pairs ---------------------------------------------------------------------------------------------

_Q = re.compile(r"^\s*(?:\d{1,2}[.)]\s*)?[*_#\s]*(?:question|q)\s*\d*\s*[*_]*\s*[:：.]\s*[*_]*\s*", re.IGNORECASE)
_A = re.compile(r"^\s*[*_#\s]*(?:(?:the\s+)?(?:correct\s+)?answers?(?:\s+is\b)?|a)\s*\d*\s*[*_]*\s*"
                r"(?:[:：.]|(?<=is)\s)\s*[*_]*\s*", re.IGNORECASE)
_INLINE_A = re.compile(r"(?<=[?？])\s+(?:the\s+)?(?:correct\s+)?answer\s*[:：]\s*", re.IGNORECASE)
_QA_ZH_Q = re.compile(r"^\s*(?:\d{1,2}[.)、]\s*)?(?:问题|问)\s*\d*\s*[:：]\s*")
_QA_ZH_A = re.compile(r"^\s*(?:答案|回答|答)\s*\d*\s*[:：]\s*")


def parse_qa_pairs(text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs from ``Question: ... Answer: ...`` blocks (also Q:/A:, numbered, bold,
    Chinese labels). A question may span lines (multiple-choice options); so may an answer."""
    pairs: list[tuple[str, str]] = []
    q: list[str] | None = None
    a: list[str] | None = None

    def flush() -> None:
        if q is not None and a is not None:
            qs, ans = "\n".join(q).strip(), "\n".join(a).strip()
            if qs and ans:
                pairs.append((qs, ans))

    for line in text.split("\n"):
        mq = _Q.match(line) or _QA_ZH_Q.match(line)
        ma = None if mq else (_A.match(line) or _QA_ZH_A.match(line))
        if mq:
            flush()
            rest = line[mq.end() :].rstrip(" *_")
            inline = _INLINE_A.search(rest)  # "Question: ...? Answer: yes" on one line
            q, a = ([rest[: inline.start()]], [rest[inline.end() :]]) if inline else ([rest], None)
        elif ma and q is not None and a is None:
            a = [line[ma.end() :].rstrip(" *_")]
        elif a is not None:
            a.append(line.rstrip())
        elif q is not None:
            q.append(line.rstrip())
    flush()
    out, seen = [], set()
    for qs, ans in pairs:  # small models repeat a pair (or a question) verbatim: keep its first occurrence
        qs, ans = _clean_inline(qs), _clean_inline(ans)
        key = re.sub(r"\W+", " ", qs).strip().lower()
        if key not in seen:
            seen.add(key)
            out.append((qs, ans))
    return out


def _clean_inline(s: str) -> str:
    s = re.sub(r"(\*\*|__)(.+?)\1", r"\2", s)
    return re.sub(r"\n{2,}", "\n", s).strip()


@step("qa_pairs")
def qa_pairs(text: str, ctx: PostContext, max_pairs: int = 8, tokens_per_pair: int = 150) -> str:
    """Parse pairs, shuffle them (seeded per request) and keep a number that grows with the source's
    length (one per ``tokens_per_pair`` source tokens, at least one, at most ``max_pairs``)."""
    pairs = parse_qa_pairs(text)
    if not pairs:
        raise Drop("no_qa_pairs", "no Question:/Answer: pairs found")
    random.Random(ctx.seed).shuffle(pairs)
    keep = max(1, min(max_pairs, len(pairs), math.ceil(max(ctx.source_tokens, 1) / max(tokens_per_pair, 1))))
    return "\n\n".join(f"Question: {q}\nAnswer: {a}" for q, a in pairs[:keep])


# -- annotation scores ------------------------------------------------------------------------------------


@step("parse_score")
def parse_score(text: str, ctx: PostContext, label: str = "score", min: int = 0, max: int = 5) -> str:
    """The integer after the last ``<label>:`` (``Educational score: 3``, bold or ``3/5`` allowed); a
    missing or out-of-range score raises Drop: an unparsed answer is a counted failure, never a 0."""
    words = r"[\s*_]*".join(re.escape(w) for w in label.split())
    found = re.findall(r"(?i)" + words + r"[\s*_]*[:：]?[\s*_]*(-?\d+(?:\.\d+)?)", text)
    if not found:
        raise Drop("no_score", f"no '{label}: <number>' found")
    value = float(found[-1])
    if not value.is_integer() or not min <= value <= max:
        raise Drop("score_out_of_range", f"{found[-1]} is not an integer in [{min}, {max}]")
    return str(int(value))


# -- running a recipe's list ------------------------------------------------------------------------------


def parse_steps(spec: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """YAML ``postprocess:`` list -> [(step name, kwargs)]; names are checked here (config time)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for item in spec:
        if isinstance(item, str):
            name, kwargs = item, {}
        elif isinstance(item, dict) and len(item) == 1:
            name, raw = next(iter(item.items()))
            if raw is None:
                kwargs = {}
            elif isinstance(raw, dict):
                kwargs = dict(raw)
            elif name == "strip_lead_in" and isinstance(raw, list | str):
                kwargs = {"phrases": [raw] if isinstance(raw, str) else list(raw)}
            else:
                raise ValueError(f"postprocess step {name!r}: arguments must be a mapping")
        else:
            raise ValueError(f"postprocess entries are a step name or {{name: {{args}}}}, got {item!r}")
        if name not in STEPS:
            raise ValueError(f"unknown postprocess step {name!r} (known: {', '.join(sorted(STEPS))})")
        out.append((name, kwargs))
    return out


def run_steps(text: str, steps: list[tuple[str, dict[str, Any]]], ctx: PostContext) -> str:
    """Apply the steps in order; raises Drop (``empty`` when nothing is left)."""
    out = text
    for name, kwargs in steps:
        out = STEPS[name](out, ctx, **kwargs)
        if not out.strip():
            raise Drop("empty", f"nothing left after {name}")
    out = out.strip()
    if not out:
        raise Drop("empty")
    return out
