"""Chinese support: script guess, jieba segmentation (and where its cache goes), word statistics."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pyarrow as pa

from filters import cjk
from filters.text import TextBatch


def test_script_guess() -> None:
    texts = pa.array(["今天天气很好，我们去公园散步吧。", "日本語のテキストです。ひらがなも。", "한국어 문장입니다.",
                      "Plain English text.", "English with one 字 only in it, mostly Latin letters.", ""])
    assert list(cjk.guess_cjk_lang(texts)) == ["zh", "ja", "ko", None, None, None]


def test_jieba_segments_and_caches_outside_site_packages() -> None:
    tokenizer = cjk.jieba_tokenizer()
    assert tokenizer is cjk.jieba_tokenizer()  # one per process
    assert Path(tokenizer.tmp_dir) == Path(tempfile.gettempdir())
    site = [Path(p) for p in sys.path if p.endswith("site-packages")]
    assert site and not any(Path(tokenizer.tmp_dir).is_relative_to(p) for p in site)
    assert not any((p / "jieba" / "jieba.cache").exists() for p in site)
    assert cjk.segment_lines(["我们在这里生活了很多年"]) == ["我们 在 这里 生活 了 很多年"]


def test_jieba_words_versus_character_words() -> None:
    text = "我们在这里生活了很多年，这座城市很美丽。"
    by_char = TextBatch(pa.array([text]), "regex")
    by_word = TextBatch(pa.array([text]), "jieba")
    assert by_char.n_words[0] == 18  # every Han character is a word without segmentation
    assert by_word.n_words[0] < by_char.n_words[0]
    assert 1.5 < by_word.doc_word_chars[0] / by_word.n_words[0] < 2.5
    assert by_word.words.to_pylist()[:3] == ["我们", "在", "这里"]


def test_mixed_script_line_keeps_latin_words() -> None:
    batch = TextBatch(pa.array(["我用Python写了3.5个程序"]), "jieba")
    assert "Python" in batch.words.to_pylist() and "35" in batch.words.to_pylist()
