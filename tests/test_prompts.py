"""Diversity per prompt: a collapsed prompt is found, within- and across-prompt scores, distinct-n,
the shipped text sample's two settings, and ``vendiscope compare``'s per-prompt output."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import app_on
from explorer.cli.parser import main
from explorer.curate.prompts import distinct_n, prompt_diversity, prompt_table

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "generations" / "generations.jsonl"


def planted(seed: int = 1, d: int = 48, prompts: int = 5, per: int = 6) -> tuple[np.ndarray, pd.DataFrame]:
    """``prompts`` prompts with ``per`` spread-out generations each, except prompt p2: ``per``
    identical generations."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(prompts * per, d))
    x[2 * per:3 * per] = x[2 * per]
    items = pd.DataFrame({"id": [f"g{i}" for i in range(len(x))],
                          "prompt": [f"p{i // per}" for i in range(len(x))]})
    return x, items


@pytest.mark.parametrize("kernel", ["centred", "cosine"])
def test_a_prompt_with_identical_generations_is_collapsed_with_within_prompt_vs_1(kernel):
    x, items = planted()
    report = prompt_diversity(x, items, kernel=kernel)
    s = report["sets"]["all"]
    assert s["collapsed"] == ["p2"]
    per = {p["prompt"]: p for p in s["per_prompt"]}
    assert per["p2"]["vs1"] == pytest.approx(1.0) and per["p2"]["vs1_equal_n"] == pytest.approx(1.0)
    # the others: six directions in 48 dimensions, nearly orthogonal
    assert all(per[p]["vs1"] > 4 for p in per if p != "p2")
    assert s["within"] == pytest.approx(np.mean([p["vs1_equal_n"] for p in per.values()]))
    assert s["across"] > s["within"]  # 25 directions and one repeated item, against six per prompt
    assert report["n_per_prompt"] == 6 and report["kernel"].startswith("centred" if kernel == "centred" else "cosine")


def test_within_prompt_scores_compare_prompts_at_one_size():
    x, items = planted()
    extra = np.random.default_rng(9).normal(size=(20, x.shape[1]))  # p0 gets 26 generations
    x = np.vstack([x, extra])
    items = pd.concat([items, pd.DataFrame({"id": [f"e{i}" for i in range(20)], "prompt": "p0"})], ignore_index=True)
    per = {p["prompt"]: p for p in prompt_diversity(x, items)["sets"]["all"]["per_prompt"]}
    assert per["p0"]["n"] == 26 and per["p0"]["vs1"] > 10  # all its generations
    assert per["p0"]["vs1_equal_n"] < 6  # but at 6, as every prompt is scored


def test_a_model_diverse_across_prompts_but_collapsed_within_each():
    """Two sets on the same prompts: one answers each prompt with one repeated text (a different
    text per prompt), the other varies: within-prompt tells them apart far more than across."""
    rng = np.random.default_rng(2)
    d, prompts, per = 64, 8, 6
    varied = rng.normal(size=(prompts * per, d))
    repeated = np.repeat(rng.normal(size=(prompts, d)), per, axis=0) + 0.01 * rng.normal(size=(prompts * per, d))
    items = pd.DataFrame({"set": ["varied"] * (prompts * per) + ["repeated"] * (prompts * per),
                          "prompt": [f"p{i // per}" for i in range(prompts * per)] * 2})
    report = prompt_diversity(np.vstack([varied, repeated]), items)
    v, r = report["sets"]["varied"], report["sets"]["repeated"]
    assert r["within"] < 1.2 < 4 < v["within"]
    assert r["across"] > 5  # diverse across prompts all the same
    assert sorted(r["collapsed"]) == [f"p{i}" for i in range(prompts)] and v["collapsed"] == []
    table = prompt_table(report).set_index("set")
    assert table.loc["repeated", "collapsed prompts"] == prompts and table.loc["varied", "collapsed share"] == 0


def test_distinct_n_counts_ngrams_within_texts():
    assert distinct_n(["a b c", "a b c"], 1) == 0.5 and distinct_n(["a b c", "a b c"], 2) == 0.5
    assert distinct_n(["A, b!", "c d"], 2) == 1.0  # case and punctuation ignored; no bigram spans texts
    assert distinct_n(["", "one"], 2) is None
    with pytest.raises(ValueError, match="'prompt' column"):
        prompt_diversity(np.eye(3), pd.DataFrame({"id": ["a", "b", "c"]}))


def test_the_text_sample_is_made_by_its_script(tmp_path):
    out = tmp_path / "g.jsonl"
    subprocess.run([sys.executable, str(ROOT / "sample_data" / "make_generations.py"), "--out", str(out)],
                   check=True, capture_output=True)
    assert out.read_bytes() == SAMPLE.read_bytes()
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    assert {r["set"] for r in rows} == {"temp1.0", "temp0.2"} and len(rows) == 192
    assert all(set(r) == {"id", "set", "prompt", "text"} for r in rows)


@pytest.mark.slow
def test_the_text_samples_settings_differ_in_the_expected_direction():
    from explorer.data.datasets import load_dataset
    from explorer.embed.pipeline import embed_dataset
    from explorer.embed.registry import get_embedder

    result = embed_dataset(load_dataset(SAMPLE), get_embedder("minilm", device="cpu"))
    assert "prompt" in result.items and len(result.items) == 192
    report = prompt_diversity(result.embeddings, result.items)
    hot, cold = report["sets"]["temp1.0"], report["sets"]["temp0.2"]
    assert hot["within"] > 2 * cold["within"] and hot["across"] > cold["across"]
    assert len(cold["collapsed"]) > len(hot["collapsed"])
    for n in (1, 2):
        assert hot[f"distinct_{n}"] > cold[f"distinct_{n}"]
        assert hot[f"distinct_{n}_within"] > cold[f"distinct_{n}_within"]


def test_compare_reports_diversity_per_prompt_per_set(tmp_path, capsys):
    rng = np.random.default_rng(4)
    d, prompts, per = 32, 6, 8
    varied = rng.normal(size=(prompts * per, d))
    repeated = np.repeat(rng.normal(size=(prompts, d)), per, axis=0)
    repeated[:per] = rng.normal(size=(per, d))  # one prompt answered with variety
    np.save(tmp_path / "emb.npy", np.vstack([varied, repeated]).astype(np.float32))
    pd.DataFrame({"id": [f"v{i}" for i in range(2 * prompts * per)],
                  "set": ["greedy"] * (prompts * per) + ["beam"] * (prompts * per),
                  "prompt": [f"p{i // per}" for i in range(prompts * per)] * 2}).to_parquet(tmp_path / "items.parquet")
    args = ["compare", "beam", "--reference", "greedy", "--in", str(tmp_path / "emb.npy"), "--quiet", "--n-boot", "5"]
    assert main([*args, "--json"]) == 0
    per_prompt = json.loads(capsys.readouterr().out)["per_prompt"]
    assert per_prompt["kernel"] == "centred cosine (centre: mean of the reference 'greedy')"
    beam, greedy = per_prompt["sets"]["beam"], per_prompt["sets"]["greedy"]
    assert beam["collapsed"] == ["p1", "p2", "p3", "p4", "p5"] and greedy["collapsed"] == []
    assert beam["within"] < greedy["within"] and "distinct_1" not in beam  # vectors: no texts
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "diversity per prompt (centred cosine" in text
    assert "beam: 6 prompts; within-prompt VS_1 " in text and "collapsed prompts: 5 of 6: p1; p2; p3; p4; p5" in text


@pytest.mark.slow
def test_the_compare_page_shows_diversity_per_prompt_side_by_side(tmp_path):

    from explorer.curate.prompts import per_prompt_of_sets

    rng = np.random.default_rng(4)
    d, prompts, per = 32, 6, 8
    x = np.vstack([rng.normal(size=(prompts * per, d)),
                   np.repeat(rng.normal(size=(prompts, d)), per, axis=0)]).astype(np.float32)
    items = pd.DataFrame({"id": [f"v{i}" for i in range(len(x))],
                          "set": ["sampled"] * (prompts * per) + ["greedy"] * (prompts * per),
                          "prompt": [f"p{i // per}" for i in range(prompts * per)] * 2})
    np.save(tmp_path / "emb.npy", x)
    items.to_parquet(tmp_path / "items.parquet")
    source = str(tmp_path / "emb.npy")
    at = app_on(source, "compare")
    assert "Diversity per prompt" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "within-prompt VS₁" in d.value.columns).set_index("set")
    assert at.selectbox(key="compare_reference").value == "greedy"  # the first set: the page's default
    report = per_prompt_of_sets(x, items, reference="greedy")
    assert table.loc["greedy", "collapsed prompts"] == prompts and table.loc["sampled", "collapsed prompts"] == 0
    assert table.loc["sampled", "within-prompt VS₁"] == round(report["sets"]["sampled"]["within"], 3)
    at.selectbox(key="prompt_set").set_value("greedy").run()
    assert not at.exception, at.exception
    rows = next(d.value for d in at.dataframe if "vs1_equal_n" in d.value.columns)
    assert rows["collapsed"].all() and (rows["vs1"] == 1.0).all()
