"""Memory stays bounded where the data is large and the answer small: checked in a subprocess
under an address-space cap (RLIMIT_AS), so a quadratic allocation fails the test."""
import json
import subprocess
import sys
import textwrap

import pytest

BOOTSTRAP = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100_300, 512)).astype(np.float32)   # 205 MB
    groups = ["big"] * 100_000 + ["small"] * 300
    cap = int(sys.argv[1]) << 20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from explorer.metrics.equal_n import bootstrap_scores
    t = bootstrap_scores(x, groups, q=[1.0], n_boot=5)
    print(json.dumps(t.set_index("group")["VS_1"].to_dict()))
""")


@pytest.mark.parametrize("cap_mb", [3_000])
def test_a_100k_against_300_bootstrap_runs_under_a_memory_cap(cap_mb):
    # the whole group's Gram would be 100k² x 8 B = 80 GB; one subset's is 240² x 8 B
    proc = subprocess.run([sys.executable, "-c", BOOTSTRAP, str(cap_mb)], capture_output=True, text=True,
                          timeout=300, env={"OPENBLAS_NUM_THREADS": "1", "PATH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = json.loads(proc.stdout)
    assert set(scores) == {"big", "small"} and all(v > 200 for v in scores.values())  # 240 near-orthogonal rows
