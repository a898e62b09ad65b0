"""Launch-to-first-chart time of the app on the sample data, cold (empty caches) and warm.

Each run starts a fresh ``vendiscope app`` process and a fresh headless Chromium and times from
process launch to the UMAP map being drawn. The baseline, measured in the same run, is a bare
Streamlit script that draws one plotly chart: what any Streamlit app costs on this machine.

    python benchmarks/startup.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
BASELINE = """
import numpy as np, plotly.graph_objects as go, streamlit as st
st.title("baseline")
xy = np.random.default_rng(0).normal(size=(5000, 2))
st.plotly_chart(go.Figure(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers")))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_chart(cmd: list[str], port: int, env: dict) -> float:
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError as err:
                if proc.poll() is not None or time.perf_counter() - start > 120:
                    raise RuntimeError("server did not start") from err
                time.sleep(0.05)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}")
            page.wait_for_selector(".js-plotly-plot", timeout=300_000)
            elapsed = time.perf_counter() - start
            browser.close()
        return elapsed
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HOME": tmp, "VENDISCOPE_CACHE": str(Path(tmp) / "cache")}
        app = lambda port: [str(bindir / "vendiscope"), "app", "--port", str(port)]  # noqa: E731
        script = Path(tmp) / "baseline.py"
        script.write_text(BASELINE)
        base = lambda port: [sys.executable, "-m", "streamlit", "run", str(script),  # noqa: E731
                             "--server.port", str(port), "--server.headless", "true",
                             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
        cold = time_to_chart(app(p := free_port()), p, env)
        print(f"cold start (empty caches): {cold:6.2f} s", flush=True)
        warm = [time_to_chart(app(p := free_port()), p, env) for _ in range(args.repeats)]
        baseline = [time_to_chart(base(p := free_port()), p, env) for _ in range(args.repeats)]
    w, b = statistics.median(warm), statistics.median(baseline)
    print(f"warm start (median of {args.repeats}): {w:6.2f} s")
    print(f"bare Streamlit + plotly baseline:  {b:6.2f} s")
    print(f"ratio warm / baseline: {w / b:.2f}   cold / baseline: {cold / b:.2f}")


if __name__ == "__main__":
    main()
