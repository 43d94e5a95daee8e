"""Chinese and CJK support: script checks, jieba segmentation and the built-in zh settings.

Rules that count words would reject nearly every clean Chinese page if words were whitespace
tokens (a Chinese paragraph is one "word"); counting each Han character instead makes words one
character long, which breaks the word-length and n-gram rules. So Chinese text is segmented with
jieba, and thresholds that are about the shape of English text get Chinese defaults here.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import warnings
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HAN = r"\p{Han}"
KANA = r"[\p{Hiragana}\p{Katakana}]"
HANGUL = r"\p{Hangul}"
LETTER = r"\p{L}"

# Function words that any running Chinese text contains, the analogue of Gopher's English list.
ZH_STOP_WORDS: list[str] = ["的", "了", "是", "在", "和", "有", "我", "不", "这", "也", "就", "都", "而", "及",
                            "与", "着", "或", "一个", "没有", "我们", "你", "他", "她", "它", "们", "对", "从",
                            "把", "被", "让", "向", "到", "为", "以", "之", "其", "但", "因为", "所以", "如果",
                            "可以", "这个", "那", "会", "要", "很", "还", "又", "上", "中", "下"]
# Sentence-final punctuation in Chinese (full-width), plus closing quotes/brackets after it.
ZH_TERMINAL_PUNCT: list[str] = ["。", "！", "？", "”", "」", "』", "…"]
LATIN_TERMINAL_PUNCT: list[str] = [".", "!", "?", '"', "'"]

# Built-in per-language settings: applied on top of the stage's settings for documents in that
# language, below the user's own `lang_overrides`. Only keys that must differ for Chinese are set.
ZH_DEFAULTS: dict[str, Any] = {
    "compat": "paper",  # datatrove's English tokenization does not apply; jieba words and these thresholds do
    "segmenter": "jieba",
    "gopher_quality": {
        # jieba words average 1.5-2 characters (English's 3-10 range would drop every page); below 1.2
        # the "words" are mostly single characters: gibberish.
        "min_mean_word_length": 1.2,
        "max_mean_word_length": 4.0,
        "stop_words": ZH_STOP_WORDS,
        "min_stop_words": 2,
    },
    "c4": {
        "terminal_punct": LATIN_TERMINAL_PUNCT + ZH_TERMINAL_PUNCT,
        "policy_phrases": ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                           "use cookies", "隐私政策", "使用条款", "服务条款", "免责声明", "版权所有"],
    },
    "fineweb": {
        "terminal_punct": LATIN_TERMINAL_PUNCT + ZH_TERMINAL_PUNCT,
        # 30 Latin characters are 5-6 words; 30 Han characters are a full clause. Half is comparable.
        "short_line_length": 15,
    },
}
BUILTIN_LANG_DEFAULTS: dict[str, dict[str, Any]] = {"zh": ZH_DEFAULTS}
# Language labels that share the zh profile when no profile of their own exists.
LANG_ALIASES: dict[str, str] = {"yue": "zh", "wuu": "zh", "zh-cn": "zh", "zh-tw": "zh", "zh-hans": "zh",
                                "zh-hant": "zh", "cmn": "zh"}


def script_counts(texts: pa.Array) -> dict[str, np.ndarray]:
    """Per-document counts of Han, kana, Hangul and all letters, in documents with any CJK character.

    Documents without one get zeros everywhere (letters too): every script rule starts from "has
    Han/kana/Hangul", so their letters are never needed. Counts are the length left after deleting
    everything else (one RE2 pass per script, far cheaper than counting matches one by one).
    """
    n = len(texts)
    texts = pc.fill_null(texts, "")
    out = {name: np.zeros(n, np.int64) for name in ("han", "kana", "hangul", "letters")}
    has_cjk = pc.match_substring_regex(texts, f"[{HAN}{KANA[1:-1]}{HANGUL}]").to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(has_cjk)
    if len(idx):
        sub = texts.take(pa.array(idx))
        for name, pattern in (("han", HAN), ("kana", KANA[1:-1]), ("hangul", HANGUL), ("letters", LETTER)):
            out[name][idx] = _kept_length(sub, pattern)
    return out


def _kept_length(texts: pa.Array, char_class: str) -> np.ndarray:
    inner = char_class[1:-1] if char_class.startswith("[") else char_class
    rest = pc.replace_substring_regex(texts, f"[^{inner}]+", "")
    return pc.utf8_length(rest).to_numpy().astype(np.int64, copy=False)


def guess_cjk_lang(texts: pa.Array, min_han_share: float = 0.3) -> np.ndarray:
    """A cheap script check when no `lang` column exists: 'zh', 'ja', 'ko' or None per document.

    Japanese text nearly always carries kana, so Han without kana is Chinese.
    """
    c = script_counts(texts)
    letters = np.maximum(c["letters"], 1)
    out = np.full(len(texts), None, dtype=object)
    cjk = (c["han"] + c["kana"] + c["hangul"]) / letters >= min_han_share
    out[cjk & (c["han"] > 0)] = "zh"
    out[cjk & (c["kana"] > 0.05 * letters)] = "ja"
    out[cjk & (c["hangul"] > c["han"]) & (c["hangul"] > c["kana"])] = "ko"
    return out


# ----------------------------------------------------------------------------------------------
# jieba: one tokenizer per process, built lazily; its dictionary cache goes to the temp directory
# (never into site-packages), and its progress messages are silenced.
_JIEBA: Any = None
_JIEBA_LOCK = threading.Lock()
_SEG_CACHE: dict[str, str] = {}
_SEG_CACHE_MAX = 200_000


def jieba_tokenizer() -> Any:
    global _JIEBA
    with _JIEBA_LOCK:
        if _JIEBA is None:
            with warnings.catch_warnings():  # jieba imports the deprecated pkg_resources
                warnings.simplefilter("ignore", DeprecationWarning)
                import jieba

            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.tmp_dir = tempfile.gettempdir()
            tokenizer.initialize()
            _JIEBA = tokenizer
    return _JIEBA


def clear_segment_cache() -> None:
    """Forget memoized segmentations (benchmarks: each measurement starts cold)."""
    _SEG_CACHE.clear()


def _join_tokens(tokens: list[str]) -> str:
    """Spaces only around CJK tokens: the Latin/number runs in between stay as written ("3.5")."""
    parts: list[str] = []
    prev_cjk = True
    for tok in tokens:
        cjk = ord(tok[0]) >= 0x2E80
        if parts and (cjk or prev_cjk):
            parts.append(" ")
        parts.append(tok)
        prev_cjk = cjk
    return "".join(parts)


def segment_lines(lines: list[str]) -> list[str]:
    """Each line with jieba's tokens separated by spaces, so the regex word splitter can count them.

    Results are memoized per line: boilerplate and spam lines repeat, and C4 re-measures lines.
    jieba's HMM (new-word guessing) is off: it costs a quarter of the time, and the statistics only
    need word boundaries, not names (an unknown name falls apart into characters).
    """
    tokenizer = jieba_tokenizer()
    out = []
    cache = _SEG_CACHE
    for line in lines:
        seg = cache.get(line)
        if seg is None:
            seg = _join_tokens(tokenizer.lcut(line, HMM=False))
            if len(cache) >= _SEG_CACHE_MAX:
                cache.clear()
            cache[line] = seg
        out.append(seg)
    return out
