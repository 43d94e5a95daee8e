"""The reference side of the `compat: datatrove` tests: datatrove 0.10 and spaCy (the `oracle` extra).

`build_rules()` reads the facts `filters/datatrove_en.json` records from the installed packages (spaCy's
English tokenizer rules, its sentencizer's punctuation, datatrove's punctuation sets); run this module
to rewrite that file after an upgrade (`python -m tests.oracle`). `datatrove_decisions()` runs the
four datatrove filters on texts, one document at a time, as datatrove does.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

RULES_FILE = Path(__file__).resolve().parents[1] / "filters" / "datatrove_en.json"
FILTER_NAMES = ("gopher_quality", "gopher_repetition", "c4", "fineweb")


def build_rules() -> dict[str, Any]:
    import importlib.metadata as md

    import spacy
    from datatrove.utils.text import PUNCTUATION_SET, TERMINAL_PUNCTUATION

    nlp = spacy.blank("en")
    tok = nlp.tokenizer
    sentencizer = nlp.add_pipe("sentencizer")
    return {
        "about": "Facts about spaCy's blank English tokenizer and datatrove's punctuation sets, read from the "
                 "installed packages by tests/oracle.py; filters/en_tokens.py applies them (no spaCy at run time).",
        "versions": {"spacy": md.version("spacy"), "datatrove": md.version("datatrove")},
        "prefix": tok.prefix_search.__self__.pattern,
        "suffix": tok.suffix_search.__self__.pattern,
        "infix": tok.infix_finditer.__self__.pattern,
        "url": tok.url_match.__self__.pattern,
        "specials": {k: [t[65] for t in v] for k, v in sorted(tok.rules.items())},  # 65 = ORTH
        "sentence_punct": sorted(sentencizer.punct_chars),
        "punctuation": sorted(PUNCTUATION_SET),
        "terminal_punctuation": sorted(TERMINAL_PUNCTUATION),
    }


def spacy_tokens(text: str) -> list[str]:
    """What datatrove's English word tokenizer returns."""
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    return load_word_tokenizer("en").word_tokenize(text)


def spacy_sentences(text: str) -> int:
    """How many sentences datatrove's C4 filter counts in a line."""
    from datatrove.utils.text import split_into_sentences

    return len(split_into_sentences(text))


@lru_cache(maxsize=1)
def datatrove_filters() -> dict[str, Any]:
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    return {"gopher_quality": GopherQualityFilter(), "gopher_repetition": GopherRepetitionFilter(),
            "c4": C4QualityFilter(), "fineweb": FineWebQualityFilter()}


def datatrove_decisions(texts: list[str], names: tuple[str, ...] = FILTER_NAMES) -> dict[str, list[str | None]]:
    """filter -> per text: None (kept) or datatrove's reason."""
    from datatrove.data import Document

    filters = datatrove_filters()
    out: dict[str, list[str | None]] = {}
    for name in names:
        reasons: list[str | None] = []
        for i, text in enumerate(texts):
            result = filters[name].filter(Document(text=text, id=str(i)))
            kept, reason = (result, None) if isinstance(result, bool) else result
            reasons.append(None if kept else (reason or "removed"))
        out[name] = reasons
    return out


# -- generated edge cases ---------------------------------------------------------------------------
EDGE_CASES = Path(__file__).with_name("edge_cases.json")


@lru_cache(maxsize=1)
def edge_data() -> dict[str, Any]:
    return json.loads(EDGE_CASES.read_text(encoding="utf-8"))


def prose(rng, n_sentences: int) -> str:
    out = []
    for _ in range(n_sentences):
        n = rng.randint(3, 18)
        words = [rng.choice(edge_data()["words"]) for _ in range(n)]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), rng.choice(edge_data()["inserts"]))
        end = rng.choice([".", ".", ".", "!", "?", "...", "…", "", ".\"", ".)", ":", ";"])
        out.append(" ".join(words).capitalize() + end)
    return " ".join(out)


def edge_case_texts(n: int = 400, seed: int = 0) -> list[str]:
    """Documents mixing prose with every rule's edge cases, sized to land on both sides of thresholds."""
    import random

    rng = random.Random(seed)
    fragments = edge_data()["fragments"]
    docs = list(fragments)  # each fragment alone (short documents)
    seps = ["\n", "\n\n", " ", "\r\n", "\n \n", "\n\n\n", "\t\n", "\u2028"]
    while len(docs) < n:
        parts = []
        for _ in range(rng.randint(1, 14)):
            r = rng.random()
            if r < 0.45:
                parts.append(prose(rng, rng.randint(1, 6)))
            elif r < 0.85:
                parts.append(rng.choice(fragments))
            elif r < 0.92 and parts:
                parts.append(rng.choice(parts))  # repetition
            else:
                parts.append("x" * rng.choice([50, 999, 1001, 3000]) + rng.choice([".", " end.", ""]))  # long lines
        doc = "".join(p + rng.choice(seps) for p in parts)
        docs.append(rng.choice(["", " ", "\n"]) + doc if rng.random() < 0.2 else doc.rstrip() if rng.random() < .5
                    else doc)
    return docs[:n]


if __name__ == "__main__":
    RULES_FILE.write_text(json.dumps(build_rules(), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {RULES_FILE}")
