"""Many users at once: N sessions against one local `vendiscope app` for a fixed time, each
repeating the same actions (open Overview, Explore, Modes and Compare, draw a lasso on Explore).
Prints per-action p50/p90/max for one user and for N users, their p90 ratio (target <= 2), the
server's CPU per action, and its RSS over two identical rounds of N users (target: flat within 10%).

    python benchmarks/load.py [--sessions 6] [--seconds 60] [--think 0] [--client protocol|links|reload]

``--think S``: each user pauses 0.5-1.5 x S seconds after each answer, as a person looks at a page
before the next click. The default 0 is the saturation case (every user asks again the moment an
answer is there); a think time compares the server's users as people use it.

``--client protocol`` (the default) is a visitor without a browser (benchmarks/st_session.py): it
speaks Streamlit's WebSocket protocol, asks for pages and lassos as the browser does, keeps a
browser's message cache and fetches the media files each run refers to, and draws nothing. An
action is timed to the server's last script_finished for it (a run that follows within 150 ms
counts) plus its media fetches: what the server makes each user wait for, which is what grows with
the number of users. Users with a think time arrive spread out, each after its first pause.

``--client links`` and ``reload`` drive headless Chromiums instead, and also time the drawing.
``links`` opens each page by its sidebar link, as a user does (the app's JavaScript loaded once);
``reload`` opens each page by its URL (a new page load and server session each time: the worst
case). The browsers stand in for the users' own machines, but on one small machine their drawing
(six Chromiums) competes with the server for the same cores: Chromium sets its own processes'
priorities, so ``--client-nice`` does not keep them out of the server's way, and with 2 cores the
six browsers alone need more CPU per round of actions than one user's whole action takes.

Needs Chromium (/usr/bin/chromium) and the playwright package for the browser clients (never
`playwright install`).
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
        "--no-first-run", "--disable-component-update"]
PAGES = [("overview", "/", "Overview", "Vendi scores per set"),
         ("explore", "/explore", "Explore", "Items sorted by their contribution"),
         ("modes", "/modes", "Modes", "Weight of mode 1"),
         ("compare", "/compare", "Compare", "Diversity and fidelity per set")]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            todo += [int(c) for t in os.listdir(f"/proc/{p}/task")
                     for c in open(f"/proc/{p}/task/{t}/children").read().split()]
        except OSError:
            continue
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process, its threads and its children, from /proc."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            todo += [int(c) for t in os.listdir(f"/proc/{p}/task")
                     for c in open(f"/proc/{p}/task/{t}/children").read().split()]
        except OSError:
            continue
    return total


def measured_round(url: str, sessions: int, seconds: float, client: str, server: int) -> dict[str, list[float]]:
    """A round, and the server's share of the machine during it: its CPU seconds per action and
    the cores it kept busy. When the server keeps well under one core busy while the users wait
    longer, the wait is the browsers' (they share these cores), not the server's; near one core,
    it is Python's GIL (one process runs one thread of Python at a time)."""
    # this process's tree holds the server too (started by it): the clients' share is the difference
    cpu, everything, start = cpu_seconds(server), cpu_seconds(os.getpid()), time.monotonic()
    timings = asyncio.run(round_of(url, sessions, seconds, client))
    cpu, everything, wall = cpu_seconds(server) - cpu, cpu_seconds(os.getpid()) - everything, time.monotonic() - start
    mine, cores = everything - cpu, os.cpu_count() or 1
    actions = max(1, sum(map(len, timings.values())))
    print(f"    server: {cpu:.1f} CPU s over {wall:.0f} s, {cpu / actions:.2f} CPU s an action, "
          f"{cpu / wall:.2f} of {cores} cores busy; the clients: {mine / actions:.3f} CPU s an action "
          f"(browsers: only while they live), {mine / wall:.2f} cores; "
          f"{actions / wall / sessions:.2f} actions/s a user", flush=True)
    if sessions > 1:  # users asking back to back queue for the cores, whatever serves them
        print(f"    floor for {sessions} users asking back to back on {cores} cores: {sessions} x "
              f"{cpu / actions:.2f} CPU s / {cores} = {sessions * cpu / actions / cores:.2f} s an action on average",
              flush=True)
    return timings


# the Explore heading that names what the grid holds ("All filtered items: ..." or "Selection: ...")
HEADING = ("([...document.querySelectorAll('h3')].map(e => e.innerText)"
           ".find(t => t.startsWith('Selection:') || t.startsWith('All filtered items')) || '')")


async def settle(page) -> None:
    """Wait until the app has finished its rerun (Streamlit's running indicator is gone)."""
    await page.wait_for_timeout(150)
    await page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=600_000)


LASSOS = itertools.count()  # shared by every user and round: no two lassos alike
THINK = [0.0]  # seconds a user looks at an answer before the next action (--think)
PAUSES = random.Random(0)


def lasso_reach() -> float:
    """How far the next lasso reaches into the map (0.3-0.6 of it): golden-ratio steps never repeat."""
    return 0.3 + 0.3 * ((next(LASSOS) * 0.6180339887) % 1.0)


async def think() -> None:
    """A user's pause after an answer: 0.5-1.5 times --think, so that users drift apart as people
    do instead of asking in lock-step (0: every user asks again at once, the saturation case)."""
    if THINK[0] > 0:
        await asyncio.sleep(THINK[0] * PAUSES.uniform(0.5, 1.5))


async def lasso(page) -> None:
    """A lasso over the map's upper-left part whose size no other lasso of the run has: every
    lasso is a new selection, never one the server remembers."""
    area = await page.locator("canvas.vs-canvas").first.bounding_box()
    reach = lasso_reach()
    points = [(area["x"] + fx * area["width"], area["y"] + fy * area["height"])
              for fx, fy in [(0.1, 0.1), (reach, 0.1), (reach, reach), (0.1, reach)]]
    await page.mouse.move(*points[0])
    await page.mouse.down()
    for x, y in points[1:] + points[:1]:
        await page.mouse.move(x, y, steps=5)
    await page.mouse.up()


async def open_page(page, url: str, path: str, title: str, navigate: str) -> None:
    if navigate == "reload":
        await page.goto(url + path)
    else:
        await page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()


ACTION_TIMEOUT_MS = 120_000  # an action still unanswered after this counts as failed; the user reloads


async def user(browser, url: str, seconds: float, timings: dict[str, list[float]], navigate: str,
               failures: list[str]) -> None:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    if navigate == "links":  # the app is loaded once, as a user opens it once
        await page.goto(url)
        await page.get_by_text(PAGES[0][3]).first.wait_for(timeout=600_000)
        await settle(page)
    await think()  # users arrive spread out as they pause, not all at one instant (none with --think 0)
    deadline = time.monotonic() + seconds
    # by links, the first page is already open: clicking it first would time a page already there
    order = PAGES[1:] + PAGES[:1] if navigate == "links" else PAGES
    while time.monotonic() < deadline:
        for name, path, title, marker in order:
            action = name
            try:
                start = time.monotonic()
                await open_page(page, url, path, title, navigate)
                await page.get_by_text(marker).first.wait_for(timeout=ACTION_TIMEOUT_MS)
                await settle(page)
                timings.setdefault(name, []).append(time.monotonic() - start)
                await think()
                if name == "explore":
                    action = "lasso"
                    await page.locator("canvas.vs-canvas").first.wait_for(timeout=ACTION_TIMEOUT_MS)
                    before = await page.evaluate(f"() => {HEADING}")
                    start = time.monotonic()
                    await lasso(page)
                    await page.wait_for_function(  # this lasso's answer, not the last one's
                        f"(before) => {{ const h = {HEADING}; return h.startsWith('Selection:') && h !== before; }}",
                        arg=before, timeout=ACTION_TIMEOUT_MS)
                    await settle(page)
                    timings.setdefault("lasso", []).append(time.monotonic() - start)
                    await think()
            except PlaywrightTimeout:
                failures.append(f"{action}: no answer within {ACTION_TIMEOUT_MS / 1000:.0f} s "
                                f"(heading {await page.evaluate(f'() => {HEADING}')!r})")
                try:
                    await page.goto(url + path)  # as a user would: reload, and go on
                except PlaywrightTimeout:
                    failures.append(f"{action}: the reload after it timed out too")
    await context.close()


async def protocol_user(url: str, seconds: float, timings: dict[str, list[float]], failures: list[str],
                        timeout: float) -> None:
    """A browserless visitor (benchmarks/st_session.py) doing what `user` does in Chromium; a lasso
    is drawn over the same part of the map, in the map's own coordinates."""
    from st_session import Session, map_points

    async with Session(url, timeout=timeout) as session:
        await session.run()
        await think()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for name, path, _, marker in PAGES[1:] + PAGES[:1]:
                action = name
                try:
                    run = await session.run(page=path.strip("/"))
                    if not any(marker in t for t in run.texts):
                        failures.append(f"{name}: answered without {marker!r} ({run.status})")
                        continue
                    timings.setdefault(name, []).append(run.seconds)
                    await think()
                    if name == "explore":
                        action = "lasso"
                        shape = lasso_shape(map_points(session))
                        map_ = session.component("vendiscope_map")
                        run = await session.run(widgets={map_.id: {"selection": shape, "hover": None}},
                                                fragment=map_.fragment)
                        if not any(t.startswith("Selection:") for t in run.texts):
                            failures.append(f"lasso: answered without a selection ({run.status})")
                            continue
                        timings.setdefault("lasso", []).append(run.seconds)
                        await think()
                except (asyncio.TimeoutError, LookupError) as err:
                    failures.append(f"{action}: {type(err).__name__} {err}")


def lasso_shape(points) -> dict:
    """The browser's lasso (upper-left part of the map, a size no other lasso of the run has) in
    the map's coordinates: screen y runs down, the map's y up."""
    x, y = points["x"], points["y"]
    x0, x1, y0, y1 = float(x.min()), float(x.max()), float(y.min()), float(y.max())
    reach = lasso_reach()
    corners = [(0.1, 0.1), (reach, 0.1), (reach, reach), (0.1, reach)]
    return {"lasso": [[x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)] for fx, fy in corners]}


async def round_of(url: str, sessions: int, seconds: float, client: str,
                   timeout: float = ACTION_TIMEOUT_MS / 1000) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    failures: list[str] = []
    if client == "protocol":
        await asyncio.gather(*[protocol_user(url, seconds, timings, failures, timeout) for _ in range(sessions)])
    else:
        from playwright.async_api import async_playwright

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            await asyncio.gather(*[user(browser, url, seconds, timings, client, failures) for _ in range(sessions)])
            await browser.close()
    print(f"  {sessions} session(s): {sum(map(len, timings.values()))} actions answered, {len(failures)} not"
          + "".join(f"\n    {f}" for f in failures), flush=True)
    return timings


def summary(timings: dict[str, list[float]]) -> dict[str, tuple[float, float, float, int]]:
    out = {}
    for name, values in timings.items():
        values = sorted(values)
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        out[name] = (statistics.median(values), p90, values[-1], len(values))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--client", choices=("protocol", "links", "reload"), default="protocol",
                        help="browserless sessions (default), or Chromiums opening pages by their sidebar links "
                             "(one page load a user) or by reloading their URL")
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds a user looks at each answer before the next action (default 0: saturation)")
    parser.add_argument("--client-nice", type=int, default=19, help="niceness of the clients (0: as the server)")
    args = parser.parse_args()
    THINK[0] = args.think
    home = Path(tempfile.mkdtemp(prefix="vendiscope-load-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HOME": str(home), "VENDISCOPE_CACHE": os.environ.get("VENDISCOPE_CACHE", str(home / "cache"))}
    server = subprocess.Popen([str(Path(sys.executable).parent / "vendiscope"), "app", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped benchmark stops its server (finally)
    os.nice(args.client_nice)  # this process and the browsers it starts; the server started above keeps its own
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # st_session
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - t0, rss_mb(server.pid)))
                stop.wait(1.0)

        threading.Thread(target=sample, daemon=True).start()
        print("warming up (one pass of every page; the first computes and caches on disk)...", flush=True)
        asyncio.run(round_of(url, 1, 1, args.client, timeout=600))  # the first computes: minutes on a cold cache
        single = summary(measured_round(url, 1, args.seconds, args.client, server.pid))
        marks = [len(samples)]
        many = [summary(measured_round(url, args.sessions, args.seconds, args.client, server.pid))]
        marks.append(len(samples))
        many.append(summary(measured_round(url, args.sessions, args.seconds, args.client, server.pid)))
        marks.append(len(samples))
        stop.set()
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"\nper action, seconds ({args.client} clients, think {args.think:g} s): "
          f"1 user | {args.sessions} users (round 1) | p90 ratio")
    for name in single:
        s1, sn = single[name], many[0].get(name)
        if sn is None:
            continue
        print(f"  {name:9s} p50 {s1[0]:6.2f} p90 {s1[1]:6.2f} max {s1[2]:6.2f} (n={s1[3]:3d}) | "
              f"p50 {sn[0]:6.2f} p90 {sn[1]:6.2f} max {sn[2]:6.2f} (n={sn[3]:3d}) | {sn[1] / s1[1]:5.2f}x")
    first = [mb for _, mb in samples[marks[0]:marks[1]]]
    second = [mb for _, mb in samples[marks[1]:marks[2]]]
    if first and second:
        change = (max(second) - max(first)) / max(first)
        print(f"\nserver RSS, MB: round 1 start {first[0]:.0f} peak {max(first):.0f} end {first[-1]:.0f}; "
              f"round 2 start {second[0]:.0f} peak {max(second):.0f} end {second[-1]:.0f}; "
              f"peak change {100 * change:+.1f}% (target within ±10%)")


if __name__ == "__main__":
    main()
