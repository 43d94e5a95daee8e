"""Gopher quality and repetition rules: each one just inside and just outside its threshold."""

from __future__ import annotations

import itertools
import string
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from filters import gopher_quality as gq
from filters import gopher_repetition as gr
from filters.base import first_failure
from filters.text import TextBatch


def unique_words(n: int, length: int = 4, prefix: str = "") -> list[str]:
    """n distinct lower-case words of exactly `length` letters (no stop words, no repeats)."""
    k = length - len(prefix)
    skip = 1000 if 26**k > 1000 + n else 0
    combos = itertools.product(string.ascii_lowercase, repeat=k)
    return [prefix + "".join(c) for c in itertools.islice(combos, skip, skip + n)]


def measure(module: ModuleType, texts: list[str], segmenter: str = "regex", **settings: Any):
    """`compat: paper` unless a test asks otherwise: these tests pin down the papers' reading."""
    settings.setdefault("compat", "paper")
    return module.measure(TextBatch(pa.array(texts), segmenter), module.Settings(**settings))


def failing(module: ModuleType, text: str, **settings: Any) -> set[str]:
    result = measure(module, [text], **settings)
    return {rule for rule, mask in result.fails.items() if mask[0]}


def signal(module: ModuleType, text: str, name: str, **settings: Any) -> float:
    return float(measure(module, [text], **settings).signals[name][0])


def prose(n_words: int) -> str:
    """Words that pass every quality rule except where a test changes one thing."""
    words = ["the", "of"] + unique_words(n_words - 2, 5)
    return " ".join(words) + "."


# -- gopher_quality ---------------------------------------------------------------------------------
def test_published_defaults() -> None:
    s = gq.Settings()
    assert (s.min_words, s.max_words, s.min_mean_word_length, s.max_mean_word_length) == (50, 100_000, 3, 10)
    assert (s.max_hash_ratio, s.max_ellipsis_ratio, s.max_bullet_lines_ratio, s.max_ellipsis_lines_ratio) == (
        0.1, 0.1, 0.9, 0.3)
    assert (s.min_alpha_words_ratio, s.min_stop_words) == (0.8, 2)
    assert set(s.stop_words) == {"the", "be", "to", "of", "and", "that", "have", "with"}
    r = gr.Settings()
    assert (r.max_dup_line_ratio, r.max_dup_line_char_ratio, r.max_dup_para_ratio, r.max_dup_para_char_ratio) == (
        0.3, 0.2, 0.3, 0.2)
    assert [getattr(r, f"max_top_{n}gram_ratio") for n in (2, 3, 4)] == [0.20, 0.18, 0.16]
    assert [getattr(r, f"max_dup_{n}gram_ratio") for n in range(5, 11)] == [0.15, 0.14, 0.13, 0.12, 0.11, 0.10]


def test_clean_prose_passes_everything() -> None:
    assert failing(gq, prose(60)) == set()


def test_min_words() -> None:
    assert "word_count" not in failing(gq, prose(50))
    assert "word_count" in failing(gq, prose(49))


def test_symbols_are_not_words() -> None:
    assert signal(gq, prose(50) + " # ... — !! ** ->", "gopher_word_count") == 50


def test_max_words() -> None:
    assert "word_count" not in failing(gq, prose(60), max_words=60)
    assert "word_count" in failing(gq, prose(61), max_words=60)


def test_mean_word_length_low() -> None:
    three = " ".join(["the", "and"] + ["abc"] * 98)  # mean exactly 3
    assert signal(gq, three, "gopher_mean_word_length") == 3.0
    assert "mean_word_length" not in failing(gq, three)
    assert "mean_word_length" in failing(gq, three + " ab")  # 302 / 101 < 3


def test_mean_word_length_high() -> None:
    def doc(extra: int) -> str:
        words = ["the", "of"] + unique_words(98, 10)
        words[2] += "x" * extra
        return " ".join(words)

    assert signal(gq, doc(15), "gopher_mean_word_length") == 10.0  # (5 + 980 + 15) / 100
    assert "mean_word_length" not in failing(gq, doc(15))
    assert "mean_word_length" in failing(gq, doc(16))


@pytest.mark.parametrize(("symbol", "rule"), [("#", "hash_ratio"), ("...", "ellipsis_ratio"), ("…", "ellipsis_ratio")])
def test_symbol_ratios(symbol: str, rule: str) -> None:
    words = prose(100)[:-1].split()
    inside = " ".join(w + (f" {symbol}" if i < 10 else "") for i, w in enumerate(words)) + "."
    outside = " ".join(w + (f" {symbol}" if i < 11 else "") for i, w in enumerate(words)) + "."
    assert rule not in failing(gq, inside)  # 10 per 100 words
    assert rule in failing(gq, outside)  # 11 per 100 words


def _lines(n: int, marked: int, mark: Any) -> str:
    words = unique_words(3 * n, 5)
    out = []
    for i in range(n):
        body = f"the of {' '.join(words[3 * i: 3 * i + 3])}"
        out.append(mark(body) if i < marked else body + ".")
    return "\n".join(out)


@pytest.mark.parametrize("bullet", ["•", "-", "*"])
def test_bullet_lines(bullet: str) -> None:
    assert "bullet_lines" not in failing(gq, _lines(100, 90, lambda b: f"{bullet} {b}"))
    assert "bullet_lines" in failing(gq, _lines(100, 91, lambda b: f"{bullet} {b}"))


def test_ellipsis_lines() -> None:
    assert "ellipsis_lines" not in failing(gq, _lines(100, 30, lambda b: f"{b}..."))
    assert "ellipsis_lines" in failing(gq, _lines(100, 31, lambda b: f"{b}…"))


def test_alpha_words() -> None:
    def doc(numbers: int) -> str:
        return " ".join(["the", "of"] + unique_words(98 - numbers, 5) + [str(1000 + i) for i in range(numbers)])

    assert signal(gq, doc(20), "gopher_alpha_words_ratio") == pytest.approx(0.8)
    assert "alpha_words" not in failing(gq, doc(20))
    assert "alpha_words" in failing(gq, doc(21))


def test_numbers_with_separators_are_one_word() -> None:
    assert signal(gq, "the of 75.25 and 1,000,000 and 3", "gopher_word_count") == 7


def test_stop_words() -> None:
    body = unique_words(60, 5)
    assert "stop_words" not in failing(gq, " ".join(["The", "with"] + body))  # case-insensitive, 2 hits
    assert "stop_words" in failing(gq, " ".join(["the"] + body))
    assert "stop_words" not in failing(gq, " ".join(["的", "了"] + body), stop_words=["的", "了"])


def test_first_failing_rule_in_fixed_order() -> None:
    result = measure(gq, ["# # # # # short", prose(60)])
    reasons = first_failure(result.fails, 2)
    assert list(reasons) == ["word_count", None]


def test_rule_disabled_with_none() -> None:
    assert "word_count" not in failing(gq, prose(10), min_words=None)


def test_empty_batch_has_typed_signals() -> None:
    result = measure(gq, [])
    assert set(result.signals) == set(gq.SIGNALS)
    assert all(len(v) == 0 for v in result.signals.values())


# -- gopher_repetition -----------------------------------------------------------------------------
def _text_lines(n_unique: int, dup_copies: int) -> str:
    words = unique_words(n_unique + 1, 6)
    return "\n".join(words[:n_unique] + [words[-1]] * (dup_copies + 1))


def test_dup_line_ratio() -> None:
    assert "dup_line_ratio" not in failing(gr, _text_lines(69, 30))  # 30 / 100
    assert "dup_line_ratio" in failing(gr, _text_lines(68, 31))  # 31 / 100


def test_dup_line_char_ratio() -> None:
    dup = "x" * 100
    inside = "a" * 298 + "\n" + dup + "\n" + dup  # 100 / 500
    outside = "a" * 297 + "\n" + dup + "\n" + dup  # 100 / 499
    assert signal(gr, inside, "gopher_dup_line_char_ratio") == pytest.approx(0.2)
    assert "dup_line_char_ratio" not in failing(gr, inside)
    assert "dup_line_char_ratio" in failing(gr, outside)


def test_dup_para_ratio() -> None:
    words = unique_words(101, 6)

    def doc(unique: int, copies: int) -> str:
        return "\n\n".join(words[:unique] + [words[-1]] * (copies + 1))

    assert "dup_para_ratio" not in failing(gr, doc(69, 30))
    assert "dup_para_ratio" in failing(gr, doc(68, 31))
    assert signal(gr, doc(68, 31).replace("\n\n", "\n"), "gopher_dup_para_ratio") == 0  # one paragraph


def test_dup_para_char_ratio() -> None:
    dup = "y" * 100
    inside = "a" * 296 + "\n\n" + dup + "\n\n" + dup  # 100 / 500
    outside = "a" * 295 + "\n\n" + dup + "\n\n" + dup  # 100 / 499
    assert "dup_para_char_ratio" not in failing(gr, inside)
    assert "dup_para_char_ratio" in failing(gr, outside)


def test_top_2gram_default_threshold() -> None:
    def doc(fillers: int) -> str:
        out = []
        filler = iter(unique_words(fillers, 4))
        for i in range(10):  # "ab cd" 10 times, each time followed by fillers // 10 unique 4-letter words
            out += ["ab", "cd"] + [next(filler) for _ in range(fillers // 10 + (i < fillers % 10))]
        return " ".join(out)

    assert signal(gr, doc(40), "gopher_top_2gram_ratio") == pytest.approx(0.2)  # 40 / (40 + 160)
    assert "top_2gram" not in failing(gr, doc(40))
    assert "top_2gram" in failing(gr, doc(39))  # 40 / 196


def test_dup_5gram_default_threshold() -> None:
    def doc(fill: int) -> str:
        words = unique_words(fill, 4)
        phrase = ["abcd", "bcde", "cdef", "defg", "efgh"]
        return " ".join(phrase + words[: fill // 2] + phrase + words[fill // 2:])

    assert signal(gr, doc(24), "gopher_dup_5gram_ratio") == pytest.approx(5 / 34)
    assert "dup_5gram" not in failing(gr, doc(24))  # 0.147
    assert "dup_5gram" in failing(gr, doc(23))  # 5 / 33 = 0.1515


@pytest.mark.parametrize("n", [2, 3, 4])
def test_top_ngram_boundaries(n: int) -> None:
    gram = unique_words(n, 3, "q")
    filler = unique_words(60, 5)
    words = gram + filler[:20] + gram + filler[20:40] + gram + filler[40:]
    text = " ".join(words)
    expected = 3 * 3 * n / (3 * 3 * n + 60 * 5)
    value = signal(gr, text, f"gopher_top_{n}gram_ratio")
    assert value == pytest.approx(expected)
    key = f"max_top_{n}gram_ratio"
    assert f"top_{n}gram" not in failing(gr, text, **{key: value})
    assert f"top_{n}gram" in failing(gr, text, **{key: value - 1e-9})


@pytest.mark.parametrize("n", [5, 6, 7, 8, 9, 10])
def test_dup_ngram_boundaries(n: int) -> None:
    phrase = unique_words(n, 3, "q")
    filler = unique_words(60, 5)
    text = " ".join(phrase + filler[:30] + phrase + filler[30:])
    value = signal(gr, text, f"gopher_dup_{n}gram_ratio")
    assert value == pytest.approx(3 * n / (2 * 3 * n + 60 * 5))  # only the later copy counts
    key = f"max_dup_{n}gram_ratio"
    assert f"dup_{n}gram" not in failing(gr, text, **{key: value})
    assert f"dup_{n}gram" in failing(gr, text, **{key: value - 1e-9})
    if n < 10:  # a repeated n-gram is no repeated (n+1)-gram when its neighbours differ
        assert signal(gr, text, f"gopher_dup_{n + 1}gram_ratio") == 0


def test_overlapping_repeats_count_each_word_once() -> None:
    text = " ".join(["abc"] * 20)
    assert signal(gr, text, "gopher_dup_5gram_ratio") == pytest.approx(19 / 20)


def test_ngrams_do_not_cross_documents() -> None:
    phrase = "alpha bravo charlie delta echo"
    result = measure(gr, [f"{phrase} one two", f"{phrase} three four"])
    assert np.all(result.signals["gopher_dup_5gram_ratio"] == 0)
    assert np.all(result.signals["gopher_top_2gram_ratio"] == 0)


def test_repetition_on_jieba_words() -> None:
    line = "点击领取新人红包，加微信领取优惠券"
    spam = "\n".join([line] * 8 + ["今天特价"])
    clean = "今天天气很好，我们去公园散步。这座城市有很多美丽的风景，我们在这里生活了很多年。"
    result = measure(gr, [spam, clean], segmenter="jieba")
    reasons = first_failure(result.fails, 2)
    assert reasons[0] == "dup_line_ratio" and reasons[1] is None


def test_repeated_keys_equals_counting_every_key() -> None:
    """The bucket prefilter only skips keys that are certainly unique."""
    from filters.text import key_counts, repeated_keys

    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, 200_000, dtype=np.uint64)
    keys[rng.integers(0, len(keys), 5_000)] = keys[rng.integers(0, len(keys), 5_000)]  # planted repeats
    for bits in (10, 16, 22):
        assert np.array_equal(repeated_keys(keys, bits), key_counts(keys) > 1)
    assert repeated_keys(keys).sum() >= 5_000 and not repeated_keys(np.zeros(0, np.uint64)).any()
