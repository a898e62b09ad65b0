"""Diverse subset selection (explorer.curate.select, vendiscope select) on data whose truth is known."""
import json

import numpy as np
import pandas as pd
import pytest

from explorer.cli.parser import main
from explorer.curate.greedy import blocked_greedy
from explorer.curate.select import DiverseSubset, cached_selection, class_quotas, diverse_subset
from explorer.data.synthetic import mixture
from explorer.metrics.kernel_rows import kernel_rows
from explorer.metrics.vendi import vendi_scores


def one_at_a_time(rows, k, kind, first):
    """The greedy as written in the notes: every key brought up to date after every pick."""
    key = np.zeros(len(rows)) if kind == "vendi" else np.full(len(rows), -1.0)
    picks = []
    i = first
    for _ in range(k):
        picks.append(i)
        sims = (rows @ rows[i]).astype(np.float64)
        key = key + sims**2 if kind == "vendi" else np.maximum(key, sims)
        key[picks] = np.inf
        i = int(np.argmin(key))
    return np.array(picks)


@pytest.mark.parametrize("kind", ["vendi", "kcenter"])
def test_blocked_updates_pick_exactly_what_the_one_at_a_time_greedy_picks(kind):
    x, _ = mixture(6000, dim=48, clusters=15, seed=1)
    # small blocks and pools, so that many blocks end early and the lower-bound rule is exercised
    picks, _ = blocked_greedy(x, k=400, kind=kind, first=7, block=32, pool_size=128)
    assert picks.tolist() == one_at_a_time(x, 400, kind, 7).tolist()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kernel", ["centred", "cosine"])
def test_every_cluster_of_very_uneven_size_is_represented_once_k_reaches_their_number(seed, kernel):
    x, labels = mixture(8000, dim=256, clusters=25, unevenness=0.1, seed=seed)
    sizes = np.bincount(labels)
    assert sizes.max() > 20 * sizes.min()  # very uneven: a random subset of 25 misses many clusters
    picks = diverse_subset(x, k=25, kernel=kernel, seed=seed)
    assert sorted(set(labels[picks].tolist())) == list(range(25))


@pytest.mark.parametrize("kernel", ["centred", "cosine"])
def test_the_subset_beats_the_best_random_subset_and_matches_k_center(kernel):
    x, _ = mixture(20000, dim=64, clusters=30, seed=3)
    s = DiverseSubset(k=200, kernel=kernel, q=[1.0, 2.0], n_random=20).fit(x)
    assert s.scores_[1.0] >= s.random_scores_["best"][1.0]
    assert s.scores_[1.0] >= 0.98 * s.kcenter_scores_[1.0]
    # the scores are those of the chosen rows under the stated kernel, recomputed here
    rows, info = kernel_rows(x, kernel=kernel)
    assert s.kernel_info_ == info
    assert s.scores_[1.0] == pytest.approx(vendi_scores(rows[s.indices_], q=[1.0]).scores[1.0], rel=1e-9)
    assert vendi_scores(rows[s.kcenter_indices_], q=[1.0]).scores[1.0] == pytest.approx(s.kcenter_scores_[1.0])
    # the reported gains are VS_2 of the growing subset, differenced
    vs2 = [vendi_scores(rows[s.indices_[:m]], q=[2.0]).scores[2.0] for m in (10, 11)]
    assert s.gains_[10] == pytest.approx(vs2[1] - vs2[0], rel=1e-4)


def test_class_quotas_by_largest_remainder_with_every_class_kept():
    assert class_quotas([50, 30, 20], k=10).tolist() == [5, 3, 2]
    assert class_quotas([900, 90, 10], k=10).tolist() == [8, 1, 1]  # the 1% class still gets one
    assert class_quotas([900, 90, 10], k=2).tolist() == [2, 0, 0]  # k below the classes: by size
    assert class_quotas([900, 90, 10], k=9, mode="equal").tolist() == [3, 3, 3]
    assert class_quotas([4, 100, 100], k=30, mode="equal").tolist() == [4, 13, 13]  # capped, the rest shared
    with pytest.raises(ValueError, match="only 204 can be chosen"):
        class_quotas([4, 100, 100], k=205)


@pytest.mark.parametrize("quotas", ["proportional", "equal"])
def test_per_class_quotas_are_met_exactly(quotas):
    x, clusters = mixture(5000, dim=64, clusters=10, seed=4)
    # classes unrelated to the clusters, of uneven size, so quotas bind against what the greedy wants
    classes = np.random.default_rng(0).choice(["a", "b", "c", "d"], size=len(x), p=[0.6, 0.25, 0.1, 0.05])
    s = DiverseSubset(k=60, quotas=quotas, compare=False).fit(x, classes=classes)
    expected = class_quotas([int((classes == c).sum()) for c in "abcd"], k=60, mode=quotas)
    counts = pd.Series(classes[s.indices_]).value_counts().reindex(list("abcd"), fill_value=0)
    assert counts.tolist() == s.quotas_.tolist() == expected.tolist()
    assert len(set(s.indices_.tolist())) == 60


def test_no_two_near_duplicates_are_chosen():
    x, _ = mixture(600, dim=64, clusters=5, seed=5)
    rng = np.random.default_rng(5)
    copies = x[:60] + 0.002 * rng.normal(size=(60, 64)).astype(np.float32)  # near copies of 60 items
    data = np.vstack([x, copies])
    s = DiverseSubset(k=600, kernel="cosine", compare=False).fit(data)
    assert len(set((s.indices_ % 600).tolist())) == 600  # never an item and its copy
    rows = kernel_rows(data[s.indices_], kernel="cosine")[0]
    sims = rows @ rows.T
    np.fill_diagonal(sims, -1)
    assert sims.max() < s.near_threshold_ < 0.999
    # without the rule the greedy does take both of some pairs: once 64 dimensions are filled, a copy
    # overlaps the picks little more than anything else does
    loose = diverse_subset(data, k=620, kernel="cosine", dedupe=False)
    assert len(set((loose % 600).tolist())) < 620
    with pytest.raises(ValueError, match="could be chosen"):  # only 600 items are not near copies
        diverse_subset(data, k=601, kernel="cosine")


def test_flagged_items_are_never_chosen_and_the_selection_is_cached(tmp_path, monkeypatch):
    x, labels = mixture(3000, dim=32, clusters=8, seed=6)
    items = pd.DataFrame({"id": [f"i{i}" for i in range(len(x))], "label": labels.astype(str)})
    flagged = items["id"][labels == 0].tolist()  # a whole cluster flagged: it cannot be covered
    summary, picks = cached_selection(x, items, k=30, exclude_ids=flagged, cache_dir=tmp_path, n_random=3)
    assert len(picks) == 30 and not picks["id"].isin(flagged).any()
    assert set(picks["id"].str[1:].astype(int).map(lambda i: labels[i])) == set(range(1, 8))
    assert summary["excluded"] == len(flagged) and summary["kernel"].startswith("centred cosine")

    def boom(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(DiverseSubset, "fit", boom)
    again = cached_selection(x, items, k=30, exclude_ids=flagged, cache_dir=tmp_path, n_random=3)
    assert again[0] == summary and again[1].equals(picks)
    with pytest.raises(AssertionError, match="recomputed"):  # another k is another entry
        cached_selection(x, items, k=31, exclude_ids=flagged, cache_dir=tmp_path, n_random=3)


def write_embeddings(folder, x, labels):
    folder.mkdir()
    np.save(folder / "emb.npy", x)
    pd.DataFrame({"id": [f"v{i:04d}" for i in range(len(x))], "label": [f"c{c}" for c in labels]}).to_parquet(
        folder / "items.parquet")
    return folder / "emb.npy"


def test_select_cli_end_to_end(tmp_path, capsys):
    import pyarrow.parquet as pq

    from explorer.data.datasets import load_dataset
    from explorer.store.flags import FlagStore

    x, labels = mixture(2000, dim=32, clusters=6, unevenness=0.3, seed=7)
    source = write_embeddings(tmp_path / "data", x, labels)
    cache = tmp_path / "cache"
    flagged = ["v0000", "v0001", "v0002"]
    FlagStore.for_dataset(load_dataset(source).source, root=cache).add(flagged, reason="bad")
    out = tmp_path / "subset.parquet"
    code = main(["select", str(source), "--k", "24", "--per", "label", "--exclude-flagged", "--q", "1,2",
                 "--cache-dir", str(cache), "--out", str(out), "--quiet", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    table = pq.read_table(out)
    stored = json.loads(table.schema.metadata[b"vendiscope.select"])
    picks = table.to_pandas()
    assert stored == printed and set(printed["scores"]) == {"1", "2"}
    assert picks["rank"].tolist() == list(range(1, 25)) and picks["id"].is_unique
    assert not picks["id"].isin(flagged).any()
    assert picks["label"].value_counts().to_dict() == {c: m for c, m in printed["quotas"].items() if m}
    assert printed["scores"]["1"] >= printed["random"]["best"]["1"]
    assert printed["kernel"].startswith("centred cosine (centre: pooled mean of 2,000 items)")

    assert main(["select", str(source), "--k", "5", "--cache-dir", str(cache), "--out", str(tmp_path / "s.csv"),
                 "--kernel", "cosine", "--quiet", "--no-compare"]) == 0
    text = capsys.readouterr().out
    assert "on cosine" in text and "random" not in text
    assert pd.read_csv(tmp_path / "s.csv")["id"].str.startswith("v").sum() == 5
    # bad input: exit 2 with one line
    for argv, message in ((["--k", "5000"], "only 2,000"), (["--k", "3", "--per", "colour"], "no column 'colour'"),
                          (["--k", "3", "--out", str(tmp_path / "s.txt")], "--out must end in")):
        args = ["select", str(source), "--cache-dir", str(cache), "--quiet", "--out", str(out), *argv]
        assert main(args) == 2
        assert message in capsys.readouterr().err
