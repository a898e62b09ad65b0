"""What the CLI prints where it used to mislead: a group scored whole shows no interval, and a
set compared with itself points to the one-dataset audit."""
import re

import numpy as np
import pandas as pd

from explorer.cli import main


def test_score_groups_prints_no_degenerate_interval_for_a_group_scored_whole(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(50, 6)).astype(np.float32))
    # 20 items of "small" set the common size: it is scored whole (one draw), "large" 30 times
    pd.DataFrame({"id": [f"r{i}" for i in range(50)], "group": ["small"] * 20 + ["large"] * 30}).to_csv(
        tmp_path / "m.csv", index=False)
    assert main(["score", str(tmp_path / "x.npy"), "--groups", "group", "--manifest", str(tmp_path / "m.csv"),
                 "--n-boot", "30"]) == 0
    lines = {line.split("]")[0].strip(" ["): line for line in capsys.readouterr().out.splitlines()
             if line.startswith("  [")}
    assert set(lines) == {"small", "large"}
    assert lines["small"].count("(whole set, no interval)") == 5 and "[" not in lines["small"].split("]", 1)[1]
    intervals = re.findall(r"\[(\d+\.\d+), (\d+\.\d+)\]", lines["large"])
    assert len(intervals) == 5 and all(float(lo) < float(hi) for lo, hi in intervals)


def test_comparing_a_set_with_itself_points_to_the_audit(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(1).normal(size=(10, 4)).astype(np.float32))
    path = str(tmp_path / "x.npy")
    assert main(["compare", path, "--reference", path]) == 2
    err = capsys.readouterr().err
    assert "each set may be named once" in err and f"`vendiscope audit {path}`" in err
    assert main(["compare", "real", "--reference", "real", "--in", path]) == 2
    assert f"`vendiscope audit {path}` (all its sets as one pool)" in capsys.readouterr().err
