"""`filters/en_tokens.py` without the oracle: spaCy's English tokens on known cases (expectations
checked against spaCy 3.8 once; `test_heuristics_datatrove.py` compares with spaCy itself), sentence
counts, and results that never depend on what the process tokenized before."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from filters import en_tokens
from filters.en_tokens import Lexicon

CASES = [
    ("Don't stop.", ["Do", "n't", "stop", "."]),
    ("The U.S. grew 3.5%, e.g. fast!", ["The", "U.S.", "grew", "3.5", "%", ",", "e.g.", "fast", "!"]),
    ("Visit https://example.com/a?b=1 now", ["Visit", "https://example.com/a?b=1", "now"]),
    ("Mail a.b@example.org.", ["Mail", "a.b@example.org", "."]),
    ("It costs $4.99 (approx.)", ["It", "costs", "$", "4.99", "(", "approx", ".", ")"]),
    ('She said "hi..." :) 😀', ["She", "said", '"', "hi", "...", '"', ":)", "😀"]),
    ("end.The well-known  text", ["end", ".", "The", "well", "-", "known", "text"]),
    ("gonna cannot", ["gon", "na", "can", "not"]),
    ("中文句子，包含标点。", ["中文句子，包含标点", "。"]),  # no spaces: one token but its final mark
]
SENTENCES = [("Mr. Smith went. He left.", 2), ("One. Two! Three? Four", 4), ("Wait... what", 1),
             ('He said "Go." Then left.', 2), ("3.5 is a number.", 1), ("", 1), ("Hi.  There", 2), ("!Wow", 2)]


def tokens_of(texts: list[str], lex: Lexicon) -> list[list[str]]:
    tok = en_tokens.word_tokens(pa.array(texts), lex)
    names = np.array(sorted(lex.token_ids, key=lex.token_ids.__getitem__), dtype=object)
    return [list(names[tok.ids[tok.doc == i]]) for i in range(len(texts))]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_known_tokens(text: str, expected: list[str]) -> None:
    assert tokens_of([text], en_tokens.lexicon())[0] == expected


def test_sentence_counts() -> None:
    lines = [line for line, _ in SENTENCES]
    counts = en_tokens.sentence_counts(pa.array(lines), en_tokens.lexicon())
    assert counts.tolist() == [n for _, n in SENTENCES]


def test_results_do_not_depend_on_the_cache() -> None:
    texts = [text for text, _ in CASES] * 3
    warm = Lexicon()
    first = tokens_of(texts, warm)
    again = tokens_of(texts[::-1], warm)[::-1]
    cold = Lexicon()
    assert first == again == tokens_of(texts, cold)
    warm.clear()
    assert tokens_of(texts, warm) == first
    lines = [line for line, _ in SENTENCES] * 2
    assert en_tokens.sentence_counts(pa.array(lines), warm).tolist() == en_tokens.sentence_counts(
        pa.array(lines), Lexicon()).tolist()


def test_empty_batches() -> None:
    tok = en_tokens.word_tokens(pa.array([], pa.string()), en_tokens.lexicon())
    assert len(tok.ids) == 0
    assert len(en_tokens.sentence_counts(pa.array([], pa.string()), en_tokens.lexicon())) == 0
    assert tokens_of(["", " \n\t "], en_tokens.lexicon()) == [[], []]


WRAPPED_CASES = [
    ("(hello), 10km (dont) \"cant\" local): THEN:) (8) (Gotta word). A): 1990 x1", [
        "(", "hello", ")", ",", "10", "km", "(", "do", "nt", ")", '"', "ca", "nt", '"', "local", "):", "THEN", ":)",
        "(", "8)", "(", "Got", "ta", "word", ")", ".", "A", "):", "1990", "x1"]),
    ("ex-Gov. (well-known), word... 3.5, 1,000. D-Minn., A. U.S. etc.. x-ray", [
        "ex", "-", "Gov.", "(", "well", "-", "known", ")", ",", "word", "...", "3.5", ",", "1,000", ".", "D", "-",
        "Minn.", ",", "A.", "U.S.", "etc", "..", "x", "-", "ray"]),
]


@pytest.mark.parametrize(("text", "expected"), WRAPPED_CASES)
def test_shortcuts_keep_special_cases_and_emoticons(text: str, expected: list[str]) -> None:
    """A word between marks is cut without the affix regexes, except where a special case or an
    emoticon forms among the pieces (checked against spaCy 3.8 once)."""
    assert tokens_of([text], Lexicon())[0] == expected


def test_shortcuts_agree_with_the_full_rules_on_real_text() -> None:
    """Every chunk of the shared article set (real news text) and of the edge cases that a shortcut
    takes is cut exactly as spaCy's full algorithm cuts it."""
    from tests import oracle

    texts = _article_texts() + oracle.edge_case_texts(400, seed=3)
    chunks, _ = en_tokens.split_chunks(pa.array(texts, pa.string()))
    tokenize = en_tokens.ChunkTokenizer(en_tokens.rules())
    taken = [c for c in set(chunks.to_pylist()) if en_tokens._SIMPLE(c) or en_tokens._WRAPPED(c)]
    assert len(taken) > 5000
    wrong = [(c, tokenize(c), tokenize.full(c)) for c in taken if tokenize(c) != tokenize.full(c)]
    assert not wrong, wrong[:10]


def _article_texts() -> list[str]:
    import json
    import os
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "article-extraction" / "ground-truth.json"
    if not path.exists():
        if os.environ.get("CI") == "true":
            raise FileNotFoundError(path)
        pytest.skip(f"{path} not found (the shared article set)")
    return [p["articleBody"] for p in json.loads(path.read_text(encoding="utf-8")).values()]


def test_batch_tokens_are_the_full_rules_per_chunk_on_real_text() -> None:
    """The batch path (Arrow split, chunk and token dictionaries, shortcuts, ids gathered with numpy)
    gives every article of the shared set exactly the tokens of spaCy's full algorithm applied chunk by
    chunk, cold and with a lexicon warmed by other batches in another order."""
    texts = _article_texts()
    tokenize = en_tokens.ChunkTokenizer(en_tokens.rules())
    expected = [[t for chunk in text.split() for t in tokenize.full(chunk)] for text in texts]
    assert sum(map(len, expected)) > 50_000
    cold = tokens_of(texts, Lexicon())
    warm = Lexicon()
    tokens_of(texts[1::2], warm)
    tokens_of(texts[::-3], warm)
    assert cold == expected
    assert tokens_of(texts, warm) == expected


def test_suffix_search_from_the_end_finds_the_same_suffix() -> None:
    """The suffix rules are searched near the end of a chunk only: the leftmost match is the same as a
    search of the whole chunk, unbounded runs of dots and look-behinds included."""
    import re

    data = en_tokens.rules()
    tokenizer = en_tokens.ChunkTokenizer(data)
    whole = re.compile(data["suffix"]).search
    assert en_tokens.suffix_window(data["suffix"]) > 1
    chunks = ["a" * 12 + "." * k for k in range(8)] + ["." * k for k in range(1, 12)] + [
        "12345678km", "1234567km²", "abcdefg°F.", "abcdefgh)),", "word...", "x" * 30 + "%", "100,000,000$",
        "http://example.com/a.", "abcdefghi'", "abcdefghi's", "ABCDEFGH.", "abcdefgh.", "12345678+", "(((((((("]
    for chunk in chunks:
        m = whole(chunk)
        assert tokenizer._suffix_len(chunk) == (m.end() - m.start() if m else 0), chunk


def test_arrow_whitespace_split_is_pythons() -> None:
    """Chunks are cut with Arrow's whitespace split only where it agrees with `str.isspace` on every
    character; either way the chunks are those of `str.split()`."""
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    text = "".join(f"x{c}" for c in chars)
    chunks, parent = en_tokens.split_chunks(pa.array([text, " a\u3000b\x1c c ", ""]))
    assert chunks.to_pylist() == text.split() + ["a", "b", "c"]
    assert parent.tolist() == [0] * len(text.split()) + [1, 1, 1]
    assert en_tokens.arrow_whitespace_is_python()  # this pyarrow: the fast split is used
