"""C4 and FineWeb rules: each one just inside and just outside its threshold; C4 rewriting."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pyarrow as pa
import pytest

from filters import c4, fineweb
from filters.text import TextBatch
from tests.test_filters_gopher import unique_words


def measure(module: ModuleType, texts: list[str], segmenter: str = "regex", **settings: Any):
    """`compat: paper` unless a test asks otherwise: these tests pin down the papers' reading."""
    settings.setdefault("compat", "paper")
    return module.measure(TextBatch(pa.array(texts), segmenter), module.Settings(**settings))


def failing(module: ModuleType, text: str, **settings: Any) -> set[str]:
    result = measure(module, [text], **settings)
    return {rule for rule, mask in result.fails.items() if mask[0]}


def signal(module: ModuleType, text: str, name: str, **settings: Any) -> Any:
    return measure(module, [text], **settings).signals[name][0]


def sentences(n: int, offset: int = 0) -> list[str]:
    words = unique_words(4 * (n + offset), 5)
    return [" ".join(words[4 * i: 4 * i + 4]).capitalize() + "." for i in range(offset, offset + n)]


# -- C4 -----------------------------------------------------------------------------------------------
def test_c4_defaults() -> None:
    s = c4.Settings()
    assert (s.min_words_per_line, s.min_sentences, s.max_word_length) == (3, 5, 1000)
    assert s.rewrite is None and s.require_terminal_punct and s.remove_citations


def test_rewrite_default_follows_compat() -> None:
    """datatrove's C4 filter always rewrites (FineWeb judges that text); the paper reading measures."""
    assert c4.rewrites(c4.Settings(compat="datatrove")) and c4.rewrites(c4.Settings())
    assert not c4.rewrites(c4.Settings(compat="paper"))
    assert not c4.rewrites(c4.Settings(compat="datatrove", rewrite=False))
    assert c4.rewrites(c4.Settings(compat="paper", rewrite=True))
    text = "Abc def ghi jkl mno.\nMenu\nPqr stu vwx yz."
    assert measure(c4, [text], compat="datatrove").texts.to_pylist() == ["Abc def ghi jkl mno.\nPqr stu vwx yz."]
    assert measure(c4, [text], compat="datatrove", rewrite=False).texts is None


def test_min_sentences() -> None:
    assert "too_few_sentences" not in failing(c4, "\n".join(sentences(5)))
    assert "too_few_sentences" in failing(c4, "\n".join(sentences(4)))
    assert signal(c4, " ".join(sentences(3)) + " Abc? Def ghi!", "c4_sentences") == 5  # several per line


def test_sentences_only_count_in_kept_lines() -> None:
    text = "\n".join(sentences(4) + ["Please enable JavaScript to see this page."])
    assert signal(c4, text, "c4_sentences") == 4
    assert signal(c4, text, "c4_lines_javascript") == 1
    assert "too_few_sentences" in failing(c4, text)


def test_min_words_per_line() -> None:
    three = "\n".join(sentences(5) + ["Abc def ghi."])
    two = "\n".join(sentences(5) + ["Abc def."])
    assert signal(c4, three, "c4_lines_removed") == 0
    assert signal(c4, two, "c4_lines_removed") == 1
    assert signal(c4, two, "c4_lines_too_few_words") == 1


def test_terminal_punctuation_and_ellipsis() -> None:
    lines = sentences(5)
    for ending, removed in ((".", 0), ("!", 0), ("?", 0), ('"', 0), ("'", 0), ("", 1), ("...", 1), ("…", 1),
                            (":", 1)):
        text = "\n".join(lines + [f"Abc def ghi jkl{ending}"])
        assert signal(c4, text, "c4_lines_no_terminal_punct") == removed, ending
    assert signal(c4, "\n".join(lines + ["Abc def ghi jkl"]), "c4_lines_removed",
                  require_terminal_punct=False) == 0  # FineWeb's variant


def test_long_word_line() -> None:
    ok = "\n".join(sentences(5) + ["Abc def " + "x" * 999 + "."])  # a word is a whitespace token: 1000
    bad = "\n".join(sentences(5) + ["Abc def " + "x" * 1000 + "."])
    assert signal(c4, ok, "c4_lines_long_word") == 0
    assert signal(c4, bad, "c4_lines_long_word") == 1
    assert signal(c4, bad.replace("x" * 1000, "x" * 2499), "c4_lines_long_word", max_word_length=2500) == 0


def test_policy_lines() -> None:
    text = "\n".join(sentences(5) + ["By using this site you accept our Privacy Policy.",
                                    "This website uses cookies to work well."])
    assert signal(c4, text, "c4_lines_policy") == 2
    assert signal(c4, text, "c4_sentences") == 5


def test_lorem_ipsum_and_curly_bracket() -> None:
    base = "\n".join(sentences(6))
    assert failing(c4, base) == set()
    assert "lorem_ipsum" in failing(c4, base + "\nLorem Ipsum dolor sit amet.")
    assert "lorem_ipsum" not in failing(c4, base + "\nLorem dolor ipsum sit amet.")
    assert "curly_bracket" in failing(c4, base + "\nThe set {1, 2} is small.")
    assert "curly_bracket" not in failing(c4, base + "\nThe pair (1, 2) is small.")
    assert "curly_bracket" not in failing(c4, base + "\nThe set {1, 2} is small.", drop_curly_bracket=False)


def test_bad_words() -> None:
    base = "\n".join(sentences(6))
    assert "bad_words" not in failing(c4, base + "\nThe spammer came.", bad_words=["spam"])  # whole words
    assert "bad_words" in failing(c4, base + "\nThe spam came.", bad_words=["spam"])
    two = base + "\nSpam and spam again."
    assert "bad_words" not in failing(c4, two, bad_words=["spam"], max_bad_words=2)
    assert "bad_words" in failing(c4, two, bad_words=["spam"], max_bad_words=1)
    assert "bad_words" in failing(c4, base + "\n请加微信领取。", bad_words=["加微信"])  # CJK phrase: substring


def test_paper_measures_only_by_default_and_rewrites_on_request() -> None:
    text = ("Abc def ghi jkl [1] mno.\nMenu\nHome | About\n\nPqr stu vwx [citation needed] yz.\n"
            "Please enable JavaScript now.\nSecond line here ok.")
    result = measure(c4, [text])
    assert result.texts is None
    assert result.signals["c4_citations"][0] == 2
    rewritten = measure(c4, [text], rewrite=True).texts.to_pylist()[0]
    assert rewritten == "Abc def ghi jkl mno.\n\nPqr stu vwx yz.\nSecond line here ok."


def test_rewrite_of_document_with_no_kept_lines_is_empty() -> None:
    result = measure(c4, ["menu\nhome", "", "Abc def ghi."], rewrite=True)
    assert result.texts.to_pylist() == ["", "", "Abc def ghi."]


def test_chinese_lines_with_zh_punctuation() -> None:
    zh = "今天的天气很好，我们去公园散步吧。\n这是一个美丽的城市，我们在这里生活了很多年！"
    latin_only = measure(c4, [zh], segmenter="jieba")
    assert latin_only.signals["c4_lines_no_terminal_punct"][0] == 2
    cjk = measure(c4, [zh], segmenter="jieba", terminal_punct=[".", "。", "！", "？"])
    assert cjk.signals["c4_lines_removed"][0] == 0
    assert cjk.signals["c4_sentences"][0] == 2


# -- FineWeb ------------------------------------------------------------------------------------------
def test_fineweb_defaults() -> None:
    s = fineweb.Settings()
    assert (s.min_line_punct_ratio, s.short_line_length, s.max_short_line_ratio, s.max_char_dup_ratio,
            s.max_newline_ratio) == (0.12, 30, 0.67, 0.01, 0.3)


def _fw_lines(n: int, punctuated: int) -> str:
    words = unique_words(8 * n, 5)
    return "\n".join(" ".join(words[8 * i: 8 * i + 8]) + ("." if i < punctuated else "") for i in range(n))


def test_line_punct_ratio() -> None:
    assert "line_punct_ratio" not in failing(fineweb, _fw_lines(100, 12))
    assert "line_punct_ratio" in failing(fineweb, _fw_lines(100, 11))


def test_short_line_ratio() -> None:
    def doc(short: int) -> str:
        words = unique_words(100, 5)
        long_line = "x" * 31
        return "\n".join((w + "a" * 25 if i < short else long_line + w) for i, w in enumerate(words))

    assert len(unique_words(1, 5)[0] + "a" * 25) == 30  # 30 characters is still short
    assert "short_line_ratio" not in failing(fineweb, doc(67))
    assert "short_line_ratio" in failing(fineweb, doc(68))


def test_char_dup_ratio() -> None:
    dup = "d" * 10

    def doc(other: int) -> str:
        return "a" * other + "\n" + dup + "\n" + dup

    assert signal(fineweb, doc(980), "fineweb_char_dup_ratio") == pytest.approx(0.01)  # 10 / 1000
    assert "char_dup_ratio" not in failing(fineweb, doc(980))
    assert "char_dup_ratio" in failing(fineweb, doc(979))


def test_newline_ratio() -> None:
    words = unique_words(100, 5)
    inside = "\n".join(" ".join(words[i * 10: i * 10 + 10]) for i in range(10)) + "\n" * 21  # 30 / 100
    outside = inside + "\n"
    assert signal(fineweb, inside, "fineweb_newline_ratio") == pytest.approx(0.3)
    assert "list_ratio" not in failing(fineweb, inside)
    assert "list_ratio" in failing(fineweb, outside)
