"""Planted test material for `decontaminate` and `paragraph_dedup` in the demo corpus.

* An evaluation set (`eval/demo_qa.jsonl`: id, question, answer) generated from the templates of
  `data/eval_qa.yaml`, with made-up names no other demo text uses; a tenth of the items are shorter
  than 13 words (matched whole).
* Some English high-quality web pages get one eval item as a paragraph, at the start, the middle or
  the end of the page, verbatim or with a few words edited; some get boilerplate paragraphs (share /
  subscribe / archive notices) that repeat across many pages.

Every choice comes from a generator seeded by (seed, position) alone, apart from the corpus's own
stream, so planting changes only the planted pages. Planted pages are never copied as duplicates, so
exact/near duplicate truth stays exact. truth.jsonl's `plants` lists what each page got.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from random import Random
from typing import Any

from pipeline.demo.wordlists import load

EVAL_SET = "demo_qa"
N_EVAL_ITEMS = 200
SHORT_SHARE = 0.1  # items under 13 words
EVAL_RATE = 0.25  # of eligible pages, share that gets an eval item
BOILERPLATE_RATE = 0.5  # ... that gets boilerplate paragraphs (one or two)
EDITED_SHARE = 0.3  # planted items with a few words edited
POSITIONS = ("start", "middle", "end")
_SALT = 0xC0117A111  # separates the planting streams from the corpus's own
_SLOT = re.compile(r"\{([A-Z0-9]+)\}")


def _data() -> dict[str, Any]:
    return load("eval_qa")


def _name(rng: Random) -> str:
    syl = _data()["SYLLABLES"]
    return "".join(rng.choice(syl) for _ in range(rng.randint(2, 3))).capitalize()


def _fill(template: str, rng: Random) -> str:
    data = _data()

    def slot(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in ("NAME", "PLACE", "PLACE2"):
            return _name(rng)
        if key == "YEAR":
            return str(rng.randint(1100, 1899))
        if key == "NUMBER":
            return str(rng.randint(3, 97))
        return rng.choice(data[key])

    return _SLOT.sub(slot, template)


def eval_items(seed: int, n: int = N_EVAL_ITEMS) -> list[dict[str, str]]:
    """The eval set: `n` question/answer pairs, a function of `seed` alone (the first N_EVAL_ITEMS
    of a bigger set are the demo's: benchmarks grow it without changing what is planted)."""
    data = _data()
    rng = Random(seed ^ _SALT)
    items = []
    for i in range(n):
        short = rng.random() < SHORT_SHARE
        q = _fill(rng.choice(data["SHORT_QUESTIONS" if short else "QUESTIONS"]), rng)
        a = _fill(rng.choice(data["SHORT_ANSWERS" if short else "ANSWERS"]), rng)
        items.append({"id": f"{EVAL_SET}-{i:04d}", "question": q, "answer": a})
    return items


@dataclass(frozen=True)
class Plants:
    item: int | None  # eval item index
    edited: int  # words of the question replaced (0 = verbatim)
    position: str
    boilerplate: tuple[int, ...]  # boilerplate paragraph indices


def choose(seed: int, gidx: int) -> Plants | None:
    """What the eligible page at global position `gidx` gets (None: nothing)."""
    rng = Random((seed ^ _SALT) * 1_000_003 + gidx)
    item = rng.randrange(N_EVAL_ITEMS) if rng.random() < EVAL_RATE else None
    edited = rng.randint(1, 3) if item is not None and rng.random() < EDITED_SHARE else 0
    position = POSITIONS[rng.randrange(3)]
    n_boiler = len(_data()["BOILERPLATE"])
    boiler = tuple(sorted(rng.sample(range(n_boiler), rng.randint(1, 2)))) if rng.random() < BOILERPLATE_RATE else ()
    if item is None and not boiler:
        return None
    return Plants(item, edited, position, boiler)


def _edit(question: str, n: int, rng: Random) -> str:
    words = question.split(" ")
    for i in rng.sample(range(1, len(words) - 1), min(n, len(words) - 2)):
        words[i] = rng.choice(_data()["EDIT_WORDS"])
    return " ".join(words)


def apply(text: str, plants: Plants, items: list[dict[str, str]], seed: int, gidx: int) -> tuple[str, dict[str, Any]]:
    """The page with its plants, and their truth record."""
    rng = Random((seed ^ _SALT) * 7_000_003 + gidx)
    paragraphs = text.split("\n\n")
    truth: dict[str, Any] = {"eval_set": None, "item": None, "variant": None, "position": None,
                             "boilerplate": list(plants.boilerplate)}
    if plants.item is not None:
        it = items[plants.item]
        question = _edit(it["question"], plants.edited, rng) if plants.edited else it["question"]
        block = f"{question} {it['answer']}."  # one line that ends like a sentence
        at = {"start": 0, "middle": max(1, len(paragraphs) // 2), "end": len(paragraphs)}[plants.position]
        paragraphs.insert(min(at, len(paragraphs)), block)
        truth.update(eval_set=EVAL_SET, item=plants.item, variant="edited" if plants.edited else "verbatim",
                     position=plants.position)
    boiler = _data()["BOILERPLATE"]
    for b in plants.boilerplate:  # the first one heads the page, a second one closes it
        if b == plants.boilerplate[0]:
            paragraphs.insert(0, boiler[b])
        else:
            paragraphs.append(boiler[b])
    return "\n\n".join(paragraphs), truth
