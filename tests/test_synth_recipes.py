"""Synth building blocks without vLLM: the safe filter evaluator, chunking, recipes and their clean-up."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from synth.chunking import chunk_text
from synth.filter_expr import FilterError, compile_filter
from synth.postprocess import (
    Drop,
    PostContext,
    normalize_bullets,
    parse_qa_pairs,
    remove_passage_labels,
    run_steps,
    strip_lead_in,
    strip_markdown,
    strip_preamble,
    strip_quotes,
)
from synth.recipes import RecipeError, builtin_names, load_recipe, load_recipes

DOCS = pa.table({
    "id": ["a", "b", "c", "d", "e"],
    "quality_score": [0.1, 0.6, None, 0.3, 0.95],
    "quality_bucket": pa.array([3, 15, 2, 11, 19], pa.int16()),
    "lang": ["en", "en", "zh", "zh", "en"],
    "is_code": [False, True, False, None, False],
})  # fmt: skip
CTX = PostContext()


def count_words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


# -- filter expressions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("expr, want", [
    ("quality_bucket <= 11", ["a", "c", "d"]),
    ("quality_score < 0.5 and lang == 'en'", ["a"]),
    ("lang in ['zh'] or quality_score >= 0.9", ["c", "d", "e"]),
    ("lang not in ('zh',)", ["a", "b", "e"]),
    ("not quality_score > 0.2", ["a"]),  # null score: neither > 0.2 nor its negation
    ("quality_score is None", ["c"]),
    ("quality_score is not None and 0.2 < quality_score <= 0.6", ["b", "d"]),
    ("quality_bucket > -1 and not is_code", ["a", "c", "e"]),
    ("is_code", ["b"]),
    ("True", ["a", "b", "c", "d", "e"]),
])  # fmt: skip
def test_filter_expressions_select_like_python(expr: str, want: list[str]) -> None:
    f = compile_filter(expr, DOCS.schema)
    ids = [i for i, m in zip(DOCS.column("id").to_pylist(), f.mask(DOCS), strict=True) if m]
    assert ids == want


@pytest.mark.parametrize("expr, message", [
    ("__import__('os').system('echo hi')", "Call"),
    ("open('/etc/passwd').read() == ''", "Call"),
    ("quality_score.real > 1", "Attribute"),
    ("lang[0] == 'e'", "Subscript"),
    ("quality_score * 2 > 1", "BinOp"),
    ("(lambda: 1) == 1", "Lambda"),
    ("[x for x in lang] == []", "ListComp"),
    ("lang == f'{lang}'", "JoinedStr"),
    ("lang in other_column", "literal list"),
    ("lang is 'en'", "only works with None"),
    ("__class__ == 1", "not allowed"),
    ("quality_score <", "cannot parse"),
    ("", "empty"),
    ("x := 1", "cannot parse"),
])  # fmt: skip
def test_filter_rejects_anything_that_is_not_a_plain_comparison(expr: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        compile_filter(expr)


def test_filter_names_missing_columns_and_type_mismatches() -> None:
    with pytest.raises(FilterError, match="'quality_bucket'.*do not have"):
        compile_filter("quality_bucket <= 11", pa.schema([("id", pa.string()), ("lang", pa.string())]), "sel")
    with pytest.raises(FilterError, match="does not fit the column types"):
        compile_filter("lang > 3", DOCS.schema)
    assert compile_filter("quality_score < 0.5 and lang == 'en'").columns == ["quality_score", "lang"]


# -- chunking ---------------------------------------------------------------------------------------------


def test_chunks_pack_consecutive_lines_up_to_the_budget() -> None:
    lines = [" ".join(f"w{i}_{j}" for j in range(n)) for i, n in enumerate([4, 5, 3, 6, 2, 7])]
    chunks = chunk_text("\n".join(lines), budget=12, count=count_words)
    assert [c.text.split("\n") for c in chunks] == [lines[0:2], lines[2:4], lines[4:6]]
    assert [c.index for c in chunks] == [0, 1, 2] and all(c.tokens <= 12 for c in chunks)
    assert " ".join(c.text.replace("\n", " ") for c in chunks) == " ".join(lines)  # nothing lost


def test_long_lines_are_cut_at_sentences_then_halved_and_small_packs_dropped() -> None:
    sentence = "alpha beta gamma delta epsilon."
    long_line = " ".join([sentence] * 6)  # 30 words on one line
    text = "short head line\n" + long_line + "\n" + " ".join(f"x{i}" for i in range(40))
    chunks = chunk_text(text, budget=10, count=count_words, min_tokens=4)
    assert all(c.tokens <= 10 for c in chunks)
    assert all(c.tokens >= 4 for c in chunks)
    assert any(c.text.startswith("short head line") for c in chunks)
    joined = " ".join(c.text.replace("\n", " ") for c in chunks)
    assert joined.count("alpha") == 6 and "x39" in joined
    assert chunk_text("tiny", budget=10, count=count_words, min_tokens=3) == []
    assert chunk_text("  \n \n", budget=10, count=count_words) == []
    with pytest.raises(ValueError):
        chunk_text("x", budget=0, count=count_words)


def test_chunks_never_exceed_the_budget_with_a_real_tokenizer() -> None:
    tokenizers = pytest.importorskip("tokenizers")
    from synth.tiny_model import train_tokenizer

    tok: tokenizers.Tokenizer = train_tokenizer()
    count = lambda ts: [len(e.ids) for e in tok.encode_batch(list(ts))]  # noqa: E731
    text = "\n\n".join(["The harbor and the forest lie near the old village market. " * 9,
                        "北京是中国的首都，也是一座历史悠久的城市。" * 12, "short"])  # fmt: skip
    chunks = chunk_text(text, budget=64, count=count, min_tokens=8)
    assert len(chunks) >= 4
    assert all(8 <= c.tokens <= 64 and count([c.text])[0] == c.tokens for c in chunks)


# -- post-processing --------------------------------------------------------------------------------------


def test_lead_ins_preambles_markdown_and_quotes_are_stripped() -> None:
    out = "Sure! Here is a rewritten version:\n\n**The harbor** is a port."
    assert strip_lead_in(out, CTX, ["Here is a rewritten version:"]) == "**The harbor** is a port."
    assert strip_lead_in("*Here is a rewritten version:* Text.", CTX, ["Here is a rewritten version:"]) == "Text."
    assert strip_lead_in("No lead-in here.", CTX, ["Here is a rewritten version:"]) == "No lead-in here."
    assert strip_preamble("Certainly! Here's the text:\nBody line.\n\nI hope this helps!", CTX) == "Body line."
    assert strip_preamble("Okay, the river is long.", CTX) == "the river is long."
    md = "# Title\n\nSome **bold** and *italic* and `code` with a [link](http://x).\n\n---\n- item kept"
    assert strip_markdown(md, CTX) == "Title\n\nSome bold and italic and code with a link.\n\n- item kept"
    assert strip_markdown("2 * 3 * 4 stays", CTX) == "2 * 3 * 4 stays"
    assert strip_quotes('"A quoted rewrite."', CTX) == "A quoted rewrite."
    assert strip_quotes("\u201cCurly\u201d", CTX) == "Curly"
    assert strip_quotes('"One" and "two"', CTX) == '"One" and "two"'


def test_qa_pairs_are_parsed_in_many_layouts() -> None:
    text = """Here are some questions:
1. Question: Is the harbor deep?
Answer: Yes, about 20 metres.

**Question 2:** Which is older, the bridge or the castle?
**Answer:** The castle.
Q: Which material is the bridge made of?
A) wood
B) stone
A: B) stone
Question: How long is the river in km if it is 3 times 40 km?
Answer: 3 x 40 = 120.
So 120 km.
问题：河流有多长？
答案：一百二十公里。
Question: dangling question without an answer"""
    pairs = parse_qa_pairs(text)
    assert pairs[0] == ("Is the harbor deep?", "Yes, about 20 metres.")
    assert pairs[1] == ("Which is older, the bridge or the castle?", "The castle.")
    assert pairs[2] == ("Which material is the bridge made of?\nA) wood\nB) stone", "B) stone")
    assert pairs[3] == ("How long is the river in km if it is 3 times 40 km?", "3 x 40 = 120.\nSo 120 km.")
    assert pairs[4] == ("河流有多长？", "一百二十公里。")
    assert len(pairs) == 5


def test_diverse_qa_keeps_a_length_dependent_seeded_sample() -> None:
    recipe = load_recipe("diverse_qa")
    out = "\n".join(f"Question: q{i}?\nAnswer: a{i}." for i in range(8))
    short = run_steps(out, recipe.steps, PostContext("src", source_tokens=200, seed=1))
    long = run_steps(out, recipe.steps, PostContext("src", source_tokens=990, seed=1))
    assert short.count("Question:") == 2 and long.count("Question:") == 7
    assert run_steps(out, recipe.steps, PostContext("src", 990, seed=1)) == long  # seeded
    assert run_steps(out, recipe.steps, PostContext("src", 990, seed=2)) != long
    with pytest.raises(Drop) as e:
        run_steps("The model rambled without any pairs.", recipe.steps, PostContext("src", 500, 0))
    assert e.value.cause == "no_qa_pairs"


def test_knowledge_list_bullets_and_passage_labels() -> None:
    out = "Facts:\n* The river is 120 km long.\n1. The bridge is stone.\n   • It has **three** arches.\n"
    assert normalize_bullets(out, CTX) == (
        "Facts:\n- The river is 120 km long.\n- The bridge is stone.\n  - It has three arches."
    )
    with pytest.raises(Drop, match="no_bullets"):
        normalize_bullets("Just prose, no list.", CTX)
    labelled = "Passage 1:\nThe harbor is deep.\n\n**Textbook passage 2:** Rivers carry silt.\nPassages of time."
    assert remove_passage_labels(labelled, CTX) == "The harbor is deep.\n\nRivers carry silt.\nPassages of time."


@pytest.mark.parametrize("name, raw, expected", [
    ("wiki_rephrase", 'Here is a rewritten version:\n"The **harbor** is a deep port."', "The harbor is a deep port."),
    ("distill", "Sure, here you go:\nCondensed text: The castle is old.", "The castle is old."),
    ("extract_knowledge", "Passage 1:\nRivers carry silt.\n\nPassage 2:\n## Tides\nTides rise.",
     "Rivers carry silt.\n\nTides\nTides rise."),
    ("knowledge_list", "Here are the facts:\n* one\n* two", "- one\n- two"),
])  # fmt: skip
def test_each_builtin_recipe_cleans_its_output(name: str, raw: str, expected: str) -> None:
    recipe = load_recipe(name)
    assert run_steps(raw, recipe.steps, PostContext("src", 100, 0)) == expected
    with pytest.raises(Drop, match="empty"):
        run_steps("Here is a rewritten version:   ", recipe.steps, PostContext("src", 100, 0))


# -- recipes ----------------------------------------------------------------------------------------------


def test_builtin_recipes_follow_the_reference_budgets() -> None:
    assert builtin_names() == ["distill", "diverse_qa", "edu_score", "extract_knowledge", "knowledge_list",
                               "math_score", "wiki_rephrase"]
    generating = [r for r in load_recipes(builtin_names()) if r.spec.kind == "generate"]
    budgets = {r.name: (r.spec.max_input_tokens, r.spec.max_output_tokens, r.spec.min_output_tokens, r.spec.select)
               for r in generating}  # fmt: skip
    assert budgets == {
        "wiki_rephrase": (512, 512, 50, "quality_bucket <= 11"),
        "diverse_qa": (1000, 600, 100, "quality_bucket > 11"),
        "distill": (2000, 1600, 50, "quality_bucket > 11"),
        "extract_knowledge": (1400, 1400, 50, "quality_bucket > 11"),
        "knowledge_list": (1000, 600, 50, "quality_bucket > 11"),
    }
    for r in load_recipes(builtin_names()):
        # the document first, the instruction after: the recipes applied to one document share its prefix
        prompt = r.render(text="THE-SOURCE-TEXT")
        assert prompt.startswith("Passage:\nTHE-SOURCE-TEXT\n\n") and len(prompt) > 200
    for r in generating:
        assert (r.spec.temperature, r.spec.top_p) == (0.5, 0.9)
    wiki = load_recipe("wiki_rephrase")
    assert wiki.spec.join_chunks and wiki.domain == "synth_wiki_rephrase"


def test_user_recipes_from_files_inline_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("Summarize in {{ lang or 'the same language' }}:\n{{ text }}")
    (tmp_path / "mine.yaml").write_text(
        "name: my_summary\nselect: quality_score < 0.5 and lang == 'en'\ntemplate: t.j2\n"
        "max_input_tokens: 300\nmax_output_tokens: 100\npostprocess: [strip_preamble, strip_quotes]\n"
    )
    mine = load_recipe(str(tmp_path / "mine.yaml"))
    assert mine.name == "my_summary" and mine.select is not None and mine.select.columns == ["quality_score", "lang"]
    assert mine.render(text="T", lang="en") == "Summarize in en:\nT"
    over = load_recipe({"recipe": "diverse_qa", "select": "quality_score > 0.9", "max_output_tokens": 64,
                        "name": "qa_small"})  # fmt: skip
    assert (over.name, over.spec.max_output_tokens, over.spec.max_input_tokens) == ("qa_small", 64, 1000)
    inline = load_recipe({"name": "echo", "prompt": "Repeat: {{ text }}", "min_output_tokens": 0})
    assert inline.render(text="x") == "Repeat: x"
    assert mine.fingerprint() == load_recipe(str(tmp_path / "mine.yaml")).fingerprint()
    (tmp_path / "t.j2").write_text("Changed {{ text }}")
    assert load_recipe(str(tmp_path / "mine.yaml")).fingerprint() != mine.fingerprint()


@pytest.mark.parametrize("ref, message", [
    ("no_such_recipe", "unknown recipe 'no_such_recipe'"),
    ({"recipe": "distill", "select": "open('x') == 1"}, "Call"),
    ({"recipe": "distill", "postprocess": ["make_it_nice"]}, "unknown postprocess step"),
    ({"recipe": "distill", "temprature": 0.3}, "temprature: unknown key"),
    ({"name": "x", "prompt": "{{ text.__class__.__mro__ }}"}, "does not render"),
    ({"name": "x", "prompt": "{{ undefined_var }}"}, "does not render"),
    ({"name": "x"}, "exactly one of prompt"),
    ("./missing.yaml", "cannot read"),
])  # fmt: skip
def test_bad_recipes_are_config_errors(ref: object, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        load_recipe(ref)  # type: ignore[arg-type]
    with pytest.raises(RecipeError, match="used twice"):
        load_recipes(["distill", "distill"])


def test_meta_commentary_is_dropped_not_kept_as_a_rewrite() -> None:
    from synth.postprocess import Drop, drop_meta

    for text in ("The passage below was edited for clarity. Rivers run.",
                 "In the article, we've revised the passage to make it clearer and more concise.",
                 "We have rewritten the text below for a general reader."):
        with pytest.raises(Drop):
            drop_meta(text, None)  # type: ignore[arg-type]
    assert drop_meta("The river runs to the sea. We revised our plans.", None) == (  # type: ignore[arg-type]
        "The river runs to the sea. We revised our plans.")
