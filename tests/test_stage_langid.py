"""`langid` with the real lid.176 model: detection, Han-only text, keep list, scores, newlines."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from filters.langid import ModelMissing, default_model_path, han_only, prepare, resolve_model_path
from stages.langid import LangIdConfig, Stage

try:
    MODEL = default_model_path()
except ModelMissing as exc:  # pragma: no cover - the dev environment ships the model
    pytest.skip(str(exc), allow_module_level=True)

EN = "The river flows through the old town and past the market square, where farmers sell vegetables."
ZH = "今天天气很好，我们一起去公园散步，然后在湖边的餐厅吃了午饭。"
JA = "今日はとても良い天気なので、公園を散歩しました。"
DE = "Der Fluss fließt durch die Altstadt und am Marktplatz vorbei, wo Bauern Gemüse verkaufen."


@pytest.fixture(scope="module")
def stage() -> Stage:
    s = Stage(LangIdConfig(name="langid", kind="langid"), None)
    s.setup()
    return s


def make(stage: Stage, **settings: Any) -> Stage:
    s = Stage(LangIdConfig(name="langid", kind="langid", **settings), None)
    s.model = stage.model  # share the loaded model between configurations
    return s


def apply(stage: Stage, texts: list[str], sources: list[str] | None = None) -> dict[str, list[Any]]:
    t = pa.table({"id": [str(i) for i in range(len(texts))], "text": pa.array(texts, pa.string()),
                  "source": sources or ["web"] * len(texts)})
    out = stage.apply(t)
    return {c: out.column(c).to_pylist() for c in ("lang", "lang_score", "reason")}


def test_english_chinese_and_others(stage: Stage) -> None:
    out = apply(stage, [EN, ZH, JA, DE])
    assert out["lang"] == ["en", "zh", "ja", "de"]
    assert all(s > 0.8 for s in out["lang_score"])
    assert out["reason"] == [None] * 4


@pytest.mark.parametrize("text", ["長城", "東京", "我", "北京大学", "中华人民共和国"])
def test_han_only_short_text_is_chinese(stage: Stage, text: str) -> None:
    out = apply(stage, [text])
    assert out["lang"] == ["zh"]
    assert out["lang_score"][0] >= 0.65


def test_without_script_rule_han_text_can_be_japanese(stage: Stage) -> None:
    out = apply(make(stage, script_aware=False), ["長城", "我"])
    assert out["lang"][0] == "ja"
    assert out["lang_score"][1] < 0.65  # the model spreads "我" over zh, wuu and yue


def test_han_only_check() -> None:
    assert list(han_only(pa.array(["長城", JA, "Hello 中", "中华人民共和国 is here", "한국어", ""]))) == [
        True, False, False, True, False, False]


def test_keep_list(stage: Stage) -> None:
    out = apply(make(stage, keep=["en", "zh"]), [EN, ZH, JA, DE, "東京"])
    assert out["reason"] == [None, None, "langid:not_kept", "langid:not_kept", None]


def test_min_score_and_per_language_minimum(stage: Stage) -> None:
    texts = [EN, "ok"]
    base = apply(stage, texts)
    low = base["lang_score"][1]
    assert low < 0.65 and base["reason"] == [None, "langid:low_score"]
    lang = base["lang"][1]
    assert apply(make(stage, min_score_by_lang={lang: low - 1e-6}), texts)["reason"] == [None, None]
    assert apply(make(stage, min_score_by_lang={lang: low + 1e-6}), texts)["reason"][1] == "langid:low_score"
    assert apply(make(stage, min_score=0.0), texts)["reason"] == [None, None]
    strict = apply(make(stage, min_score_by_lang={"en": 0.999999}), texts)["reason"]
    assert strict[0] == "langid:low_score"


def test_newlines_are_folded(stage: Stage) -> None:
    assert prepare(pa.array(["a\nb\n\n c\t d ", None])).to_pylist() == ["a b c d", ""]
    words = EN.split()
    multi = "\n".join(" ".join(words[i: i + 3]) for i in range(0, len(words), 3))
    one = apply(stage, [multi.replace("\n", " ")])
    folded = apply(stage, [multi])
    assert folded["lang"] == one["lang"] == ["en"]
    assert folded["lang_score"] == pytest.approx(one["lang_score"])


def test_truncation(stage: Stage) -> None:
    out = apply(make(stage, max_chars=40), [EN + " " + DE * 5])
    assert out["lang"] == ["en"]
    assert prepare(pa.array(["abcdef"]), 3).to_pylist() == ["abc"]


def test_empty_text_and_skipped_sources(stage: Stage) -> None:
    out = apply(make(stage, keep=["en"], skip_sources=["code"]), ["", "int main() { return 0; }"], ["web", "code"])
    assert out["lang"] == [None, None]
    assert out["reason"] == ["langid:not_kept", None]
    assert out["lang_score"][1] is None


def test_counters_and_fingerprint(stage: Stage) -> None:
    t = pa.table({"id": ["a", "b"], "text": [EN, ZH], "source": ["web", "web"]})
    assert stage.counters(stage.apply(t)) == {"lang_en": 1, "lang_zh": 1}
    assert len(stage.fingerprint()["model_sha256"]) == 64


def test_missing_model_is_a_clear_error(tmp_path: Any) -> None:
    with pytest.raises(ModelMissing, match="language-ID model not found"):
        resolve_model_path(str(tmp_path / "nope.ftz"))
