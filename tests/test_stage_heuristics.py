"""The `heuristics` stage: signals, reasons, scope, tag_only, Chinese profile, and a real `curate run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import ConfigError, validate
from pipeline.demo.corpus import demo_inputs
from stages.heuristics import HeuristicsConfig, Stage
from tests.conftest import curate, write_config

EN_CLEAN = [
    ("The city council voted on Tuesday to expand the bus network to the northern suburbs, a plan that has "
     "been debated for almost three years. Supporters said the new routes would cut travel times for thousands "
     "of workers who currently drive to the industrial park.\n\nThe mayor told reporters that the first buses "
     "should run by the end of the summer. Critics questioned the cost, which is expected to reach twelve "
     "million dollars, and asked whether the money would be better spent on repairing roads. The council "
     "agreed to publish a detailed budget next month and to hold two public meetings before construction "
     "begins."),
    ("Sourdough bread relies on a culture of wild yeast and bacteria rather than commercial yeast. Bakers keep "
     "the culture alive by feeding it flour and water every day, and the mixture slowly develops a sour taste "
     "that gives the bread its name.\n\nThe long fermentation has practical effects as well. It breaks down part "
     "of the starch in the dough, which changes the texture of the crumb, and it helps the loaf stay fresh for "
     "several days. Many home bakers find that the hardest part is learning to judge when the dough is ready, "
     "since the timing depends on the temperature of the kitchen."),
]
ZH_CLEAN = [
    ("本市今年启动了老旧小区改造工程，计划在三年内完成一百二十个小区的更新。改造内容包括外墙保温、管网更换和无障碍设施建设。"
     "市住建局负责人表示，工程将优先解决居民反映最集中的问题。\n\n在改造过程中，街道会组织居民议事会，听取大家对方案的意见。"
     "已经完工的小区里，电梯和停车位的问题得到了明显改善。不少老人说，现在上下楼方便多了，生活也更安心了。\n\n"
     "专家认为，城市更新不仅是修房子，更是提升公共服务水平的过程。下一步，有关部门还将探索引入社会资本，让改造工作可持续地推进。"),
    ("长江是中国第一长河，全长约六千三百公里，流经青海、西藏、四川、湖北、江苏等十一个省级行政区。"
     "它发源于青藏高原的唐古拉山脉，最终在上海附近注入东海。\n\n长江流域气候温和，雨量充沛，是中国重要的农业区和经济带。"
     "流域内有众多湖泊，其中洞庭湖和鄱阳湖是最著名的两个。历史上，长江对沿岸城市的形成和发展起到了关键作用。\n\n"
     "今天，长江上建有三峡水利枢纽等大型工程，在防洪、发电和航运方面发挥着重要作用。同时，长江的生态保护也受到越来越多的关注，"
     "十年禁渔政策已经在全流域实施。"),
    ("我最近在学习做面包，想和大家分享一下经验。刚开始的时候，我总是掌握不好发酵的时间，做出来的面包又硬又酸。"
     "后来我发现，室温对发酵的影响很大，冬天需要把面团放在温暖的地方。\n\n另外，揉面也是一个关键的步骤。"
     "面团要揉到可以拉出薄膜，这样烤出来的面包才会松软。如果你也是新手，建议先从简单的白面包开始练习。\n\n"
     "有问题的朋友可以在下面留言，我会尽量回答大家。祝大家都能做出好吃的面包！"),
]
EN_SPAM = [
    "\n".join(["Click here now for cheap watches with 70% off at BestMart!"] * 10 + ["Visit BestMart today."]),
    "\n".join(["We use cookies to improve your experience.", "Accept all cookies", "Cookie settings",
               "Read our Privacy Policy.", "Home | About | Contact"]),
]
ZH_SPAM = [
    "\n".join(["点击领取新人红包，加微信领取优惠券！"] * 10 + ["限时秒杀全场一折起"]),
    "\n".join(["首页 | 登录 | 注册 | 联系我们 | 返回顶部"] + [f"{ad}……" for ad in (
        "免费领取会员", "加群领取独家资料", "扫码关注领取福利", "注册即送888元大礼包", "今日特价仅剩最后几件",
        "添加客服微信了解详情")]),
    "\n".join(" ".join(f"#{ad}#" for ad in ("免费领取会员", "加微信", "限时秒杀", "免费试用七天")) + " ###"
              for _ in range(5)),
    "加微信领取优惠券！扫码关注领取福利！注册即送888元大礼包！今日特价仅剩最后几件！转发本条即可免费领取！",
]
CODE = "function add(a, b) {\n  return a + b;\n}\n\nconsole.log(add(1, 2));"


def table(texts: list[str], sources: list[str] | None = None, langs: list[str | None] | None = None) -> pa.Table:
    cols: dict[str, Any] = {"id": pa.array([f"d{i:03d}" for i in range(len(texts))], pa.string()),
                            "text": pa.array(texts, pa.string()),
                            "source": pa.array(sources or ["web"] * len(texts), pa.string())}
    if langs is not None:
        cols["lang"] = pa.array(langs, pa.string())
    return pa.table(cols)


def run(texts: list[str], **settings: Any) -> pa.Table:
    extra = {k: settings.pop(k) for k in ("sources", "langs_col") if k in settings}
    stage = Stage(HeuristicsConfig(name="heuristics", kind="heuristics", **settings), None)
    stage.setup()
    return stage.apply(table(texts, extra.get("sources"), extra.get("langs_col")))


def test_clean_docs_survive_and_spam_is_removed() -> None:
    result = run(EN_CLEAN + ZH_CLEAN + EN_SPAM + ZH_SPAM)
    reasons = result.column("reason").to_pylist()
    n_clean = len(EN_CLEAN) + len(ZH_CLEAN)
    assert reasons[:n_clean] == [None] * n_clean
    assert all(r is not None for r in reasons[n_clean:]), reasons
    assert result.column("heuristics_profile").to_pylist()[:n_clean] == ["default"] * 2 + ["zh"] * 3
    # datatrove counts "70", "%" and "!" as words without letters: 9 of 12 tokens have one
    assert reasons[n_clean] == "gopher_quality:alpha_words"
    assert all(":" in r for r in reasons[n_clean:])
    paper = run(EN_CLEAN + ZH_CLEAN + EN_SPAM + ZH_SPAM, compat="paper").column("reason").to_pylist()
    assert paper[:n_clean] == [None] * n_clean
    assert paper[n_clean] == "gopher_repetition:dup_line_ratio"  # long enough, has stop words, repeats


def test_chinese_needs_its_profile() -> None:
    """With English settings and no segmentation, every clean Chinese page would be dropped."""
    result = run(ZH_CLEAN, builtin_lang_defaults=False, compat="paper")
    assert result.column("reason").to_pylist() == ["gopher_quality:mean_word_length"] * 3
    # datatrove's English tokens: a Chinese run without spaces is one token (its final mark apart)
    result = run(ZH_CLEAN, builtin_lang_defaults=False)
    assert result.column("reason").to_pylist() == ["gopher_quality:word_count"] * 3
    assert run(ZH_CLEAN).column("reason").to_pylist() == [None] * 3


def test_language_from_lang_column_and_aliases() -> None:
    result = run(ZH_CLEAN[:1] * 3, langs_col=["zh", "yue", "en"])
    assert result.column("heuristics_profile").to_pylist() == ["zh", "zh", "default"]
    assert result.column("reason").to_pylist()[2] == "gopher_quality:word_count"  # English (datatrove) rules


def test_signals_written_with_stable_types() -> None:
    full = run(EN_CLEAN + ZH_SPAM)
    empty = run([])
    assert empty.num_rows == 0
    assert empty.schema == full.schema
    for name in ("gopher_word_count", "gopher_mean_word_length", "gopher_dup_line_ratio", "c4_sentences",
                 "fineweb_line_punct_ratio", "heuristics_profile", "reason"):
        assert name in full.column_names
    assert full.schema.field("gopher_word_count").type == pa.int64()
    assert full.schema.field("c4_lorem_ipsum").type == pa.bool_()
    assert full.column("gopher_word_count").to_pylist()[0] > 50
    only = run(EN_CLEAN, filters=["fineweb"])
    assert not any(c.startswith(("gopher_", "c4_")) for c in only.column_names)


def test_reason_names_filter_and_rule_in_filter_order() -> None:
    doc = EN_SPAM[0]
    assert run([doc], compat="paper").column("reason").to_pylist() == ["gopher_repetition:dup_line_ratio"]
    assert run([doc], filters=["fineweb", "gopher_repetition"]).column("reason").to_pylist() == [
        "fineweb:char_dup_ratio"]
    assert run([doc], filters=["gopher_quality"], compat="paper").column("reason").to_pylist() == [None]
    # datatrove's alphabetic-words ratio counts "70", "%" and "!" as words
    assert run([doc], filters=["gopher_repetition"]).column("reason").to_pylist() == [
        "gopher_repetition:dup_line_ratio"]
    assert run([doc], filters=["gopher_quality"]).column("reason").to_pylist() == ["gopher_quality:alpha_words"]
    # a filter's own compat wins over the stage's
    assert run([doc], filters=["gopher_quality"], gopher_quality={"compat": "paper"}).column(
        "reason").to_pylist() == [None]


def test_settings_overrides() -> None:
    assert run(EN_CLEAN[:1], gopher_quality={"min_words": 1000}).column("reason").to_pylist() == [
        "gopher_quality:word_count"]
    overridden = run(ZH_CLEAN, lang_overrides={"zh": {"gopher_quality": {"min_words": 1000}}})
    assert overridden.column("reason").to_pylist() == ["gopher_quality:word_count"] * 3
    # a stage-level setting the zh profile does not redefine still applies to Chinese documents
    assert run(ZH_CLEAN, c4={"min_sentences": 100}).column("reason").to_pylist() == ["c4:too_few_sentences"] * 3


def test_override_errors_name_the_key_path() -> None:
    raw = {"output": "out", "inputs": [{"name": "a", "path": "x.jsonl"}],
           "stages": [{"name": "heuristics", "lang_overrides": {"zh": {"gopher_quality": {"min_wrds": 3}}},
                       "c4": {"min_sentences": "many"}, "filters": ["gopher", "c4"]}]}
    with pytest.raises(ConfigError) as err:
        validate(raw)
    text = "\n".join(err.value.problems)
    assert "stages.heuristics.lang_overrides.zh.gopher_quality.min_wrds: unknown key" in text
    assert "stages.heuristics.c4.min_sentences" in text
    assert "stages.heuristics.filters[0]" in text


def test_skip_sources_leaves_documents_unmeasured() -> None:
    result = run([CODE, EN_CLEAN[0]], sources=["code", "web"], skip_sources=["code"])
    assert result.column("reason").to_pylist() == [None, None]
    assert result.column("gopher_word_count").to_pylist()[0] is None
    assert result.column("heuristics_profile").to_pylist() == [None, "default"]
    assert run([CODE], sources=["code"]).column("reason").to_pylist() == ["gopher_quality:word_count"]


def test_langs_scope() -> None:
    result = run(EN_SPAM[:1] + ZH_SPAM[:1], langs=["zh"])
    assert result.column("reason").to_pylist()[0] is None
    assert result.column("reason").to_pylist()[1] is not None


def test_tag_only_keeps_everything_and_changes_nothing() -> None:
    texts = EN_CLEAN + EN_SPAM + ZH_SPAM
    result = run(texts, tag_only=True, c4={"rewrite": True})
    assert result.column("reason").null_count == len(texts)
    assert result.column("text").to_pylist() == texts
    assert result.column("gopher_dup_line_ratio").to_pylist()[len(EN_CLEAN)] > 0.3


def test_c4_rewrite_changes_text_for_later_filters() -> None:
    doc = EN_CLEAN[0] + "\nShare this article\nPlease enable JavaScript to comment."
    result = run([doc], c4={"rewrite": True, "compat": "paper"})
    assert result.column("text").to_pylist() == [EN_CLEAN[0]]
    # datatrove joins the kept lines with one newline (the paragraph break goes)
    dt = run([doc], c4={"rewrite": True})
    assert dt.column("text").to_pylist() == [EN_CLEAN[0].replace("\n\n", "\n")]
    assert dt.column("c4_lines_removed").to_pylist() == [3]  # the blank line too
    assert result.column("c4_lines_removed").to_pylist() == [2]
    assert result.column("fineweb_short_line_ratio").to_pylist() == [0.0]  # measured after the rewrite
    assert run([doc], c4={"compat": "paper"}).column("text").to_pylist() == [doc]  # paper: measure only
    # compat datatrove rewrites by default (as datatrove); `rewrite: false` keeps the text
    assert run([doc]).column("text").to_pylist() == dt.column("text").to_pylist()
    assert run([doc], c4={"rewrite": False}).column("text").to_pylist() == [doc]


@pytest.mark.parametrize("signals", ["all", "decisive"])
def test_c4_rewrite_leaves_removed_documents_as_they_were(signals: str) -> None:
    """datatrove's C4 filter rewrites only the documents it keeps: a document removed by c4 (or before
    it) goes to the removed set with its own text, in both signals modes."""
    kept = EN_CLEAN[0] + "\nShare this article"
    curly = EN_CLEAN[1] + "\nMenu\nSet the value to {a} here."  # c4: curly bracket in a kept line
    result = run([kept, curly], signals=signals)
    assert result.column("reason").to_pylist() == [None, "c4:curly_bracket"]
    assert result.column("text").to_pylist() == [EN_CLEAN[0].replace("\n\n", "\n"), curly]


def test_two_stages_with_different_scopes_compose() -> None:
    first = Stage(HeuristicsConfig(name="h1", kind="heuristics", skip_sources=["math"]), None)
    second = Stage(HeuristicsConfig(name="h2", kind="heuristics", sources=["math"],
                                    gopher_quality={"min_alpha_words_ratio": 0.5}), None)
    t = table([EN_CLEAN[0], EN_CLEAN[1]], ["web", "math"])
    out = second.apply(first.apply(t).drop_columns(["reason"]))
    assert out.column("gopher_word_count").null_count == 0
    assert out.column("heuristics_profile").to_pylist() == ["default", "default"]


# ----------------------------------------------------------------------------------------------------
def test_curate_run_with_langid_and_heuristics(tmp_path: Path) -> None:
    web = EN_CLEAN + ZH_CLEAN + EN_SPAM + ZH_SPAM + ["Das ist ein deutscher Text über das Wetter in Berlin."]
    (tmp_path / "web.jsonl").write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in web))
    (tmp_path / "code.jsonl").write_text(json.dumps({"text": CODE}) + "\n")
    cfg = {"name": "h", "output": "out", "workers": 1, "partition_rows": 4,
           "inputs": [{"name": "web", "path": "web.jsonl"}, {"name": "code", "path": "code.jsonl"}],
           "stages": [{"name": "normalize"},
                      {"name": "langid", "keep": ["en", "zh"], "min_score": 0.0, "skip_sources": ["code"]},
                      {"name": "tagged", "kind": "heuristics", "tag_only": True},
                      {"name": "heuristics", "input": "langid", "skip_sources": ["code"]}]}
    write_config(tmp_path / "pipeline.yaml", cfg)
    curate("run", cwd=tmp_path, check=True)
    out = tmp_path / "out"
    manifests = {s: json.loads((out / s / "_manifest.json").read_text()) for s in ("langid", "tagged", "heuristics")}
    for name, m in manifests.items():
        c = m["counts"]
        assert c["in"] + c["added"] == c["kept"] + c["removed"], name
        assert sum(c["by_reason"].values()) == c["removed"], name
    assert manifests["langid"]["counts"]["by_reason"] == {"langid:not_kept": 1}
    tagged = manifests["tagged"]["counts"]
    assert tagged["removed"] == 0 and tagged["kept"] == tagged["in"] == len(web)  # + code - German
    heur = manifests["heuristics"]["counts"]
    assert heur["in"] == len(web) and heur["removed"] == len(EN_SPAM) + len(ZH_SPAM)
    assert all(r.startswith(("gopher_", "c4:", "fineweb:")) for r in heur["by_reason"])
    assert manifests["heuristics"]["stats"]["heuristics_skipped"] == 1
    kept = pq.read_table(out / "heuristics" / "data").to_pylist()
    assert {d["source"] for d in kept} == {"web", "code"}
    assert all(d["gopher_word_count"] is None for d in kept if d["source"] == "code")
    assert sorted(d["lang"] for d in kept if d["source"] == "web") == ["en"] * 2 + ["zh"] * 3
    removed = pq.read_table(out / "heuristics" / "removed").to_pylist()
    assert all(r["reason"] and r["gopher_word_count"] is not None for r in removed)


# ----------------------------------------------------------------------------------------------------


def load_demo_docs(root: Path) -> pa.Table:
    """The demo corpus's documents as ingest reads them (in-process: no runner, no Parquet round trip)."""
    from pipeline.config import InputConfig
    from pipeline.ingest import list_input_files, read_jsonl, read_table_rows
    from stages.normalize import NormalizeConfig, normalize_texts

    inputs = [InputConfig(**i) for i in demo_inputs(root)]
    docs = []
    for f in list_input_files(inputs):
        reader = read_jsonl if f.input.format.startswith("jsonl") else read_table_rows
        docs += [doc for _, doc, _ in reader(f) if doc is not None]
    t = pa.Table.from_pylist(docs)
    text = normalize_texts(t.column("text").combine_chunks(), NormalizeConfig(name="normalize"))
    return t.set_column(t.schema.get_field_index("text"), "text", text)


def demo_heuristics_stages() -> list[Stage]:
    """The heuristics stages of the repository's pipeline.yaml (the demo), in order."""
    import yaml

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "pipeline.yaml").read_text())
    stages = [s for s in raw["stages"] if s.get("kind", s["name"]) == "heuristics"]
    assert len(stages) >= 1
    return [Stage(HeuristicsConfig(**{"kind": "heuristics", **s}), None) for s in stages]


def demo_stage(name: str) -> Any:
    """The demo's (pipeline.yaml) math_detect stage with its settings there."""
    import yaml

    from stages.math_detect import MathDetectConfig
    from stages.math_detect import Stage as MathDetect

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "pipeline.yaml").read_text())
    (settings,) = [s for s in raw["stages"] if s["name"] == name]
    assert name == "math_detect"
    stage = MathDetect(MathDetectConfig(**{"kind": name, **settings}), None)
    stage.setup()
    return stage


def test_demo_corpus_clean_survives_and_spam_is_removed(tmp_path: Path) -> None:
    demo = pytest.importorskip("pipeline.demo.corpus")
    from stages.langid import LangIdConfig
    from stages.langid import Stage as LangId

    demo.write_demo_corpus(tmp_path / "demo", 1200, 11)
    truth = {row["id"]: row for row in demo.load_truth(tmp_path / "demo")}
    docs = load_demo_docs(tmp_path / "demo")
    langid = LangId(LangIdConfig(name="langid", kind="langid", keep=["en", "zh"], skip_sources=["code"]), None)
    tagged = langid.apply(docs).drop_columns(["reason"])
    tagged = demo_stage("math_detect").apply(tagged).drop_columns(["reason"])  # heuristics route by is_math
    reason_of: dict[str, str | None] = {}
    remaining = tagged
    for stage in demo_heuristics_stages():  # as `make run` runs them: each sees what the previous kept
        stage.setup()
        out = stage.apply(remaining)
        reasons = out.column("reason").to_pylist()
        reason_of.update(zip(out.column("id").to_pylist(), reasons, strict=True))
        remaining = out.filter(pa.array([r is None for r in reasons])).drop_columns(["reason"])
    rates: dict[tuple[str, str], list[bool]] = {}
    for doc_id, reason in reason_of.items():
        t = truth[doc_id]
        group = "clean" if t["quality"] == "high" and t["domain"] != "code" else t["quality"]
        rates.setdefault((group, t["lang"]), []).append(reason is None)
    kept = {key: sum(v) / len(v) for key, v in rates.items()}
    assert len(rates[("clean", "zh")]) >= 100 and len(rates[("spam", "zh")]) >= 10
    for lang in ("en", "zh"):
        assert kept[("clean", lang)] >= 0.95, kept
        assert kept[("spam", lang)] <= 0.20, kept
        assert kept[("short", lang)] <= 0.20, kept
