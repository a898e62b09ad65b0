"""Representation by attribute: planted under-represented and low-diversity groups are flagged, and
nothing else is; targets, k-means regions, and the ``vendiscope represent`` command."""
import json

import numpy as np
import pandas as pd
import pytest

from conftest import app_on
from explorer.cli.parser import main
from explorer.curate.represent import read_target, represent
from explorer.data.errors import InputError

SIZES = {"a": 200, "b": 200, "c": 200, "d": 200, "e": 24}


def planted(seed: int = 3, d: int = 32) -> tuple[np.ndarray, pd.DataFrame]:
    """Five groups of spread-out items; ``d`` huddles around one point (low diversity) and ``e``
    has 24 items where a uniform target wants a fifth (under-represented). ``site`` is a second,
    unrelated attribute with two balanced values."""
    rng = np.random.default_rng(seed)
    xs, groups = [], []
    for name, n in SIZES.items():
        xs.append(rng.normal(size=d) + 0.15 * rng.normal(size=(n, d)) if name == "d" else rng.normal(size=(n, d)))
        groups += [name] * n
    x = np.vstack(xs).astype(np.float32)
    items = pd.DataFrame({"id": [f"i{i}" for i in range(len(x))], "group": groups,
                          "site": rng.choice(["x", "y"], len(x))})
    return x, items


def flagged_names(report) -> tuple[set, set]:
    g = report.groups
    return (set(g.loc[g["under_represented"], "attribute"] + "=" + g.loc[g["under_represented"], "group"]),
            set(g.loc[g["low_diversity"], "attribute"] + "=" + g.loc[g["low_diversity"], "group"]))


@pytest.mark.parametrize("kernel", ["centred", "cosine"])
def test_the_planted_groups_are_flagged_and_nothing_else(kernel):
    x, items = planted()
    report = represent(x, items, by=["group"], kernel=kernel)
    under, low = flagged_names(report)
    assert under == {"group=e"} and low == {"group=d"}
    rows = report.groups.set_index("group")
    assert rows.loc["e", "share"] == pytest.approx(24 / 824) and rows.loc["e", "target_share"] == pytest.approx(0.2)
    assert rows.loc["e", "ratio"] == pytest.approx(24 / 824 / 0.2)
    assert set(rows["equal_n"]) == {24} and rows.loc["e", "draws"] == 1  # e scored whole: the common size
    # d's whole interval lies below every other group's
    assert rows.loc["d", "vs1_hi"] < rows.drop(index="d")["vs1_lo"].min()
    assert report.summary["kernel"].startswith("centred cosine (centre: pooled mean of 824" if kernel == "centred"
                                               else "cosine")


def test_intersections_flag_only_the_cells_of_the_planted_groups():
    x, items = planted()
    report = represent(x, items, by=["group", "site"])
    under, low = flagged_names(report)
    assert under == {"group=e", "group × site=e × x", "group × site=e × y"}
    assert low == {"group=d", "group × site=d × x", "group × site=d × y"}
    cells = report.groups[report.groups["attribute"] == "group × site"]
    assert len(cells) == 10 and cells["target_share"].round(12).eq(0.1).all()
    assert cells["n"].sum() == len(items)
    # the items behind the flags are exactly d's and e's, each with its reasons
    flagged = report.flagged()
    assert set(flagged) == set(items.loc[items["group"].isin(["d", "e"]), "id"])
    some_d = items.loc[items["group"] == "d", "id"].iloc[0]
    assert len(flagged[some_d]) == 2 and flagged[some_d][0].startswith("group=d: low diversity: VS₁ ")


def test_a_target_that_wants_the_small_group_small_flags_nothing_for_it(tmp_path):
    x, items = planted()
    path = tmp_path / "target.csv"
    pd.DataFrame({"value": list("abcde"), "share": [24, 24, 24, 24, 3]}).to_csv(path, index=False)
    target = read_target(path)
    assert sum(target["*"].values()) == pytest.approx(1)
    under, low = flagged_names(represent(x, items, by=["group"], target=target))
    assert under == set() and low == {"group=d"}
    # a wanted value missing from the data: n 0, under-represented
    pd.DataFrame({"value": list("abcdef"), "share": [1] * 6}).to_csv(path, index=False)
    report = represent(x, items, by=["group"], target=read_target(path))
    assert report.groups.set_index("group").loc["f", "n"] == 0 and "group=f" in flagged_names(report)[0]
    pd.DataFrame({"value": list("abc"), "share": [1] * 3}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"no share to group value\(s\) \['d', 'e'\]"):
        represent(x, items, by=["group"], target=read_target(path))


def test_kmeans_regions_find_a_small_region():
    rng = np.random.default_rng(0)
    centres = 6 * np.eye(16)[:3]
    sizes = [300, 300, 30]
    x = np.vstack([c + rng.normal(size=(n, 16)) for c, n in zip(centres, sizes)])
    items = pd.DataFrame({"id": [f"v{i}" for i in range(len(x))]})
    report = represent(x, items, by=["kmeans:3"])
    small = report.groups[report.groups["n"] == 30]
    assert len(small) == 1 and bool(small["under_represented"].iloc[0])
    assert report.groups["under_represented"].sum() == 1
    members = report.members(small.iloc[0].to_dict())
    assert np.flatnonzero(members).tolist() == list(range(600, 630))


def test_small_groups_are_counted_but_not_scored_and_bad_input_is_refused():
    x, items = planted()
    items.loc[:4, "group"] = "tiny"  # 5 items: below min_size
    rows = represent(x, items, by=["group"]).groups.set_index("group")
    assert rows.loc["tiny", "n"] == 5 and np.isnan(rows.loc["tiny", "vs1"]) and rows.loc["tiny", "under_represented"]
    with pytest.raises(InputError, match="no column 'gender'"):
        represent(x, items, by=["gender"])
    with pytest.raises(InputError, match="one attribute or two"):
        represent(x, items, by=["group", "site", "id"])
    with pytest.raises(InputError, match="kmeans:K"):
        represent(x, items, by=["kmeans:many"])


def test_the_represent_command_end_to_end(tmp_path, capsys):
    x, items = planted()
    np.save(tmp_path / "emb.npy", x)
    items.to_parquet(tmp_path / "items.parquet")
    out = tmp_path / "groups.csv"
    code = main(["represent", str(tmp_path / "emb.npy"), "--by", "group,site", "--json", "--quiet",
                 "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["under_represented"] == ["group=e", "group × site=e × x", "group × site=e × y"]
    assert summary["low_diversity"] == ["group=d", "group × site=d × x", "group × site=d × y"]
    assert summary["kernel"] == "centred cosine (centre: pooled mean of 824 items)"
    assert summary["equal_n"] == {"group": 24, "site": len(items) - (items["site"] == "x").sum()
                                  if (items["site"] == "x").sum() > len(items) / 2 else (items["site"] == "x").sum(),
                                  "group × site": int(items.groupby(["group", "site"]).size().min())}
    written = pd.read_csv(out)
    assert len(written) == len(summary["groups"]) == 5 + 2 + 10
    # the text report marks the flagged groups and states the rules and kernel
    assert main(["represent", str(tmp_path / "emb.npy"), "--by", "group", "--quiet", "--kernel", "cosine"]) == 0
    text = capsys.readouterr().out
    assert "kernel cosine" in text and "share < 0.5 × target share" in text
    marked = [line.split(":")[0].strip() for line in text.splitlines() if line.startswith("  ! ")]
    assert marked == ["! d", "! e"]
    assert main(["represent", str(tmp_path / "emb.npy"), "--by", "gender", "--quiet"]) == 2
    assert "no column 'gender'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_representation_page_shows_the_library_report_and_flags_its_items(tmp_path):

    from explorer.data.datasets import load_dataset
    from explorer.store.flags import FlagStore

    x, items = planted()
    np.save(tmp_path / "emb.npy", x)
    items.to_parquet(tmp_path / "items.parquet")
    source = str(tmp_path / "emb.npy")
    at = app_on(source, "represent")
    at.multiselect(key="represent_by").set_value(["group", "site"]).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    expected = represent(x, items, by=["group", "site"]).groups
    assert table["group"].tolist() == expected["group"].tolist()
    assert table.loc[table["reason"] != "", "group"].tolist() == ["d", "e", "d × x", "d × y", "e × x", "e × y"]
    assert [m.value for m in at.metric] == ["3", "3"]
    at.button(key="represent_flag").click().run()
    assert not at.exception, at.exception
    saved = FlagStore.for_dataset(load_dataset(source).source).table()
    assert set(saved["id"]) == set(items.loc[items["group"].isin(["d", "e"]), "id"])
    assert set(saved["source"]) == {"representation"}
    assert any(r.startswith("group=d: low diversity: VS₁ ") for r in saved["reason"])
