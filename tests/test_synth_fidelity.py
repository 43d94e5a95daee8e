"""Synthetic outputs checked against their sources (synth/fidelity.py), on real SmolLM2-135M-Instruct
outputs (tests/data/synth_outputs.jsonl) with planted failures: a wrong-language output, an unrelated
output and a verbatim copy; meta lines stripped. Real lid.176 and all-MiniLM-L6-v2 models (a skip
without them, a failure under CI=true)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from synth.fidelity import FidelityChecker, FidelityConfig, strip_meta
from synth.postprocess import Drop

CI = os.environ.get("CI") == "true"
DATA = Path(__file__).resolve().parent / "data" / "synth_outputs.jsonl"
# a Chinese forum post (written for this test): the source of the planted wrong-language output
CHINESE = ("我家阳台上种了几盆番茄，最近叶子开始发黄，下面的叶子还有黑色的斑点。每天早上浇一次水，"
           "阳光也很充足。请问是不是浇水太多了？需要换土吗？谢谢大家的建议。")


def recorded(recipe: str, doc: int) -> dict:
    for line in DATA.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["recipe"] == recipe and row["doc"] == doc:
            return row
    raise KeyError((recipe, doc))


@pytest.fixture(scope="module")
def checker() -> FidelityChecker:
    try:
        import onnxruntime  # noqa: F401

        from filters.embedding import default_model_zip
        from filters.langid import default_model_path

        default_model_zip()
        default_model_path()
    except (ImportError, FileNotFoundError) as exc:
        if CI:
            raise
        pytest.skip(f"models unavailable: {exc}")
    return FidelityChecker({"*": FidelityConfig(max_similarity=0.97),
                            "translate": FidelityConfig(target_language="en", min_similarity=None)})


def cause(checker: FidelityChecker, recipe: str, output: str, source: str) -> str | None:
    try:
        checker.check(recipe, output, source)
    except Drop as d:
        return d.cause
    return None


def test_meta_lines_are_stripped() -> None:
    row = recorded("wiki_rephrase", 5)
    assert row["output"].startswith("This is a rewritten version of the passage:")
    cleaned = strip_meta(row["output"])
    assert not cleaned.lower().startswith(("this is a rewritten", "i've made"))
    assert "Millions of happy customers" in cleaned[:60]
    assert strip_meta("Translated Passage: The river floods every spring.") == "The river floods every spring."
    assert strip_meta("Data Set: Here is a rewritten version of the passage:\n\nThe river floods.\n") == \
        "The river floods."
    assert strip_meta("The report says rewritten versions exist.") == "The report says rewritten versions exist."


# Closing notes SmolLM2-135M-Instruct wrote under its wiki_rephrase outputs (bench/semantic_dedup_rephrase.py)
CLOSING_NOTES = [
    "I made some changes to improve clarity and grammar throughout the passage, including rewriting it.",
    "This response is reorganized in order to provide a clearer explanation of the original passage.",
    "These changes improve the overall readability and coherence of the passage.",
    "I made several changes to enhance clarity and professionalism while maintaining the essence.",
    "I tried to keep the content similar but presented it in a logical manner.",
    "This edited version contains various elements that were previously included in the original text.",
    "Refinements were added to the original text to enhance clarity and polish the writing.",
    '8. Changed "A spokesman for the NYAG declined" to "a spokesperson for the NYAG declined" for consistency.',
    "Your entire response should be written entirely in English, and in all lowercase letters.",
    "In this edited version, I've made significant changes to improve clarity, grammar, and overall style.",
    # ... and under its sentence-at-a-time rewrites (bench/recipes/sentence_rephrase.yaml)
    "This is an example of how to rephrase sentences while keeping the original message intact.",
    "This example shows how to rephrase sentences using different wording while preserving their structure.",
    "I'm rewriting this sentence based on the original one:",
    '"The original sentence was: Another wondered why the state worried about trademarking the tagline."',
]


@pytest.mark.parametrize("note", CLOSING_NOTES)
def test_closing_notes_about_the_edit_are_stripped(note: str) -> None:
    body = "The Senate adjourned its first plenary session after the recess.\nIt observed a minute of silence."
    assert strip_meta(f"{body}\n\n{note}") == body
    assert strip_meta(f"{note}\n\n{body}") == body


@pytest.mark.parametrize("line", [
    "I made the trip in 1998 and loved the original architecture.",
    "The changes were made by the city council in 2019.",
    "Changes were made by the city council in 2019.",
    "This version of the engine was built in Coventry.",
    "This is an example of how a river changes its course.",
    "The original sentence was five years, reduced on appeal.",
])
def test_first_person_and_factual_endings_are_kept(line: str) -> None:
    body = f"The museum opened in 1990.\n{line}"
    assert strip_meta(body) == body


def test_planted_failures_are_dropped_and_good_outputs_kept(checker: FidelityChecker) -> None:
    good = recorded("wiki_rephrase", 4)  # a faithful English rephrasing of an English web page
    assert cause(checker, "wiki_rephrase", good["output"], good["input"]) is None
    # wrong language: an English essay returned for a Chinese page
    assert cause(checker, "wiki_rephrase", good["output"], CHINESE) == "wrong_language"
    # ... unless the recipe asks for that language
    assert cause(checker, "translate", good["output"], CHINESE) is None
    # unrelated: a rephrasing of an encyclopedia article given as the output for another page
    other = recorded("wiki_rephrase", 1)
    assert cause(checker, "wiki_rephrase", other["output"], good["input"]) == "unrelated"
    # a copy: the source verbatim, and nearly verbatim (whitespace and one word changed)
    assert cause(checker, "wiki_rephrase", good["input"], good["input"]) == "copy"
    near = " ".join(good["input"].split()).replace(" the ", " a ", 1)
    assert cause(checker, "wiki_rephrase", near, good["input"]) == "copy"
    # a recorded output that is chatter about the task, not about the page
    chatter = recorded("extract_knowledge", 2)
    assert cause(checker, "extract_knowledge", chatter["output"], chatter["input"]) == "unrelated"


def test_recipes_without_settings_are_not_checked() -> None:
    plain = FidelityChecker({"distill": FidelityConfig()})
    assert plain.check("wiki_rephrase", "anything", "whatever") == "anything"
    with pytest.raises(ValueError):
        FidelityConfig(unknown=1)  # type: ignore[call-arg]
