"""Explore's map renderers in headless Chromium, on the same --sizes points (20 clustered categories) in one run,
to choose the renderer for 1M points by measurement (issue 13):

- canvas: our component (pages/map.js: a typed-array raster into a 2-D canvas) called as Streamlit calls it, with a
  fake component object: first draw, the render of a wheel zoom, a lasso (mask + redraw), a hover card's rerun;
  payload: the packed points (explorer/maps/packed.py), sent once and then cached by the browser, so a lasso or a
  hover card's rerun sends only the map's small element;
- plotly-gl: Scattergl (WebGL), a trace per category as px.scatter makes: newPlot (resolves after
  'plotly_afterplot'), a relayout zoom; payload: fig.to_json(), what st.plotly_chart sends;
- pydeck: deck.gl's ScatterplotLayer (WebGL) from pydeck's bundled offline JS, fed st.pydeck_chart's JSON;
- datashader: the server's raster of every point to a 1000x700 PNG, paid again on every pan/zoom;
- embedding-atlas (its own venv, --atlas-python): what its bundle needs, and whether this browser has it.

Browser times end when the renderer says it is done and the GPU has finished (a 1-pixel readPixels); re-render is
the median of 3 zooms; payload decoding is not timed. Chromium runs with --disable-gpu, so WebGL is SwiftShader
(software): GPU-less numbers that favour the canvas; a GPU speeds the WebGL draws, not their payload.

    .venv/bin/python benchmarks/map_render.py [--sizes 100000,1000000] [--skip-plotly] [--skip-deck]
        [--skip-datashader] [--atlas-python /tmp/ea-venv/bin/python]

Needs playwright and /usr/bin/chromium (never `playwright install`). Read the ratios: the machine is noisy.
"""
from __future__ import annotations

import argparse
import functools
import io
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import plotly
import pydeck

ROOT = Path(__file__).resolve().parent.parent
PALETTE = [f"#{v:06x}" for v in (0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f,
                                  0xbcbd22, 0x17becf, 0xaec7e8, 0xffbb78, 0x98df8a, 0xff9896, 0xc5b0d5, 0xc49c94,
                                  0xf7b6d2, 0xc7c7c7, 0xdbdb8d, 0x9edae5)]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
W, H = 1000, 700
QuietHandler = type("QuietHandler", (SimpleHTTPRequestHandler,), {"log_message": lambda *args: None})
JS_COMMON = """window.finish = (gls) => gls.forEach((g) => g.readPixels(0, 0, 1, 1, g.RGBA, g.UNSIGNED_BYTE,
  new Uint8Array(4)));  // waits for the GPU (here SwiftShader) to finish drawing
window.frame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
window.median = (a) => a.slice().sort((p, q) => p - q)[a.length >> 1];
window.bin = async (k, T) => new T(await (await fetch(k + '.bin')).arrayBuffer());"""
CANVAS_JS = """async ({names, palette, digest}) => {
  const blob = new Uint8Array(await (await fetch('points.bin')).arrayBuffer());
  const host = document.getElementById('host'), store = document.createElement('div');
  let t = performance.now();  // the points element (pages/points.js) decodes the packed blob once
  (await import('./points.js')).default({data: blob, parentElement: store});
  const decode = performance.now() - t;
  const draw = (await import('./map.js')).default;
  const data = {points: digest, mode: 'category', names, palette, title: 'bench', height: 700, view_key: 'k',
    selection: null, hover_card: null};
  const call = (d) => draw({data: d, parentElement: host, setStateValue() {}, setTriggerValue() {}});
  t = performance.now(); call(data); const first = performance.now() - t;
  const canvas = host.querySelector('canvas'), r = canvas.getBoundingClientRect(), zooms = [];
  for (let k = 0; k < 3; k++) {  // map.js renders a wheel zoom in the next frame: time that frame's render
    const before = frame();
    canvas.dispatchEvent(new WheelEvent('wheel', {deltaY: -120, clientX: r.left + r.width / 2,
      clientY: r.top + r.height / 2, bubbles: true, cancelable: true}));
    const after = frame(); zooms.push((await after) - (await before));
  }
  const s = host.querySelector('.vs-map').__state, v = s.view, cx = (v.x0 + v.x1) / 2, cy = (v.y0 + v.y1) / 2;
  const lasso = Array.from({length: 64}, (_, k) => [cx + (v.x1 - v.x0) * 0.3 * Math.cos(k / 10.2),
    cy + (v.y1 - v.y0) * 0.3 * Math.sin(k / 10.2)]);
  t = performance.now(); call({...data, selection: {lasso}});  // the server echoes the shape: mask + redraw
  const lassoMs = performance.now() - t;
  t = performance.now(); call({...data, selection: {lasso}, hover_card: {index: 0, img: null, text: 'card'}});
  return {first, rerender: median(zooms), lasso: lassoMs, hover: performance.now() - t, decode,
    selected: s.selected};
}"""
PLOTLY_JS = """async () => {
  const fig = await (await fetch('plotly-gl.json')).json(), gd = document.getElementById('host');
  const gls = () => gd._fullLayout._glcanvas.data().map((d) => d.regl && d.regl._gl).filter(Boolean);
  let t = performance.now(); await Plotly.newPlot(gd, fig.data, fig.layout); finish(gls());
  const first = performance.now() - t, zooms = [];
  for (let k = 0; k < 3; k++) {
    const [a, b] = gd._fullLayout.xaxis.range, [c, d] = gd._fullLayout.yaxis.range, f = 0.1;
    t = performance.now();
    await Plotly.relayout(gd, {'xaxis.range': [a + (b - a) * f, b - (b - a) * f],
      'yaxis.range': [c + (d - c) * f, d - (d - c) * f]});
    finish(gls()); zooms.push(performance.now() - t);
  }
  return {first, rerender: median(zooms), gl: gls().length};
}"""
GPU_JS = """async () => { const g = document.createElement('canvas').getContext('webgl2');
  const d = g && g.getExtension('WEBGL_debug_renderer_info'), a = navigator.gpu && await navigator.gpu.requestAdapter();
  return [g ? g.getParameter(d ? d.UNMASKED_RENDERER_WEBGL : g.RENDERER) : null,
    a ? a.info.vendor + '/' + a.info.architecture : 'none', !!a && a.features.has('shader-f16')]; }"""
DECK_JS = """async () => {
  const spec = await (await fetch('pydeck.json')).json(), host = document.getElementById('host');
  let deck;
  const drawn = () => new Promise((res) => deck.setProps({onAfterRender: () => {
    const ls = deck.layerManager ? deck.layerManager.getLayers() : [];
    if (ls.length && ls.every((l) => l.isLoaded)) res(); }}));
  let t = performance.now(); deck = createDeck({container: host, jsonInput: spec, tooltip: false});
  const gls = () => [deck.canvas.getContext('webgl2')];
  await drawn(); finish(gls()); const first = performance.now() - t, zooms = [], vs = spec.initialViewState;
  for (let k = 1; k <= 3; k++) {
    t = performance.now(); const p = drawn(); deck.setProps({initialViewState: {...vs, zoom: vs.zoom + 0.3 * k}});
    await p; finish(gls()); zooms.push(performance.now() - t);
  }
  return {first, rerender: median(zooms)};
}"""


def layout(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20 Gaussian clusters of uneven size and spread, like a UMAP of 20 classes."""
    rng = np.random.default_rng(seed)
    c = rng.choice(20, size=n, p=rng.dirichlet(np.full(20, 2.0))).astype(np.uint16)
    centres, spread = rng.uniform(-40, 40, (20, 2)), rng.uniform(0.8, 4.0, 20)
    xy = centres[c] + rng.standard_normal((n, 2)) * spread[c, None]
    return xy[:, 0].astype(np.float32), xy[:, 1].astype(np.float32), c


def packed(x, y, c):
    from explorer.maps.packed import pack_points
    return pack_points(np.c_[x, y], categories=c)


def page_html(head: str) -> str:
    return f'<!doctype html><html><head>{head}<script>{JS_COMMON}</script></head><body style="margin:0">' \
           f'<div id="host" style="width:{W}px;height:{H + 60}px;position:relative"></div></body></html>'


def plotly_json(x, y, c) -> str:
    import plotly.graph_objects as go
    traces = [go.Scattergl(x=x[c == k], y=y[c == k], mode="markers", name=f"class {k}",
                           marker={"color": PALETTE[k], "size": 2}) for k in range(20)]
    return go.Figure(traces, layout={"width": W, "height": H, "dragmode": "lasso"}).to_json()


def deck_json(x, y, c) -> str:
    pdk = pydeck
    rgb = [[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in PALETTE]
    df = pd.DataFrame({"x": x.astype(float), "y": y.astype(float), "rgb": [rgb[k] for k in c]})
    layer = pdk.Layer("ScatterplotLayer", data=df, get_position=["x", "y"], get_fill_color="rgb",
                      radius_units="pixels", get_radius=1)
    span = float(max(np.ptp(x), np.ptp(y))) * 1.08
    view = pdk.ViewState(target=[float(x.mean()), float(y.mean()), 0], zoom=float(np.log2(H / span)))
    return pdk.Deck(layers=[layer], views=[pdk.View(type="OrthographicView", controller=True)],
                    initial_view_state=view, map_provider=None, map_style=None).to_json()  # no base map


def datashader_run(x, y, c) -> dict:
    import datashader as ds
    import datashader.transfer_functions as tf
    df = pd.DataFrame({"x": x, "y": y, "c": pd.Categorical(c)})
    xr, yr = (float(x.min()), float(x.max())), (float(y.min()), float(y.max()))

    def draw(f: float) -> int:
        sx, sy = (xr[1] - xr[0]) * f, (yr[1] - yr[0]) * f
        cvs = ds.Canvas(plot_width=W, plot_height=H, x_range=(xr[0] + sx, xr[1] - sx), y_range=(yr[0] + sy, yr[1] - sy))
        buf = io.BytesIO()
        tf.shade(cvs.points(df, "x", "y", ds.count_cat("c")), color_key=PALETTE).to_pil().save(buf, "PNG")
        return buf.tell()

    draw(0)  # numba compiles once per process
    times = [timed(draw, f)[1] for f in (0, 0, 0, 0.1, 0.15, 0.2)]
    first = statistics.median(times[:3])
    return {"first": first, "rerender": statistics.median(times[3:]), "payload": draw(0), "server": first}


def atlas_note(python: str, f16: bool) -> str:
    """Whether embedding-atlas (installed in its own venv) ships its frontend and could draw here."""
    probe = ("import embedding_atlas as e, pathlib; p = pathlib.Path(e.__file__).parent / 'static'; "
             "js = ''.join(f.read_text(errors='ignore') for f in p.rglob('*.js')); print(len(list(p.rglob('*'))), "
             "sum(f.stat().st_size for f in p.rglob('*')) >> 20, 'shader-f16' in js, 'browser with WebGPU' in js)")
    try:
        files, mb, f16_needed, webgpu_only = subprocess.run([python, "-c", probe], capture_output=True, text=True,
                                                            timeout=120, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        return f"embedding-atlas: not measured, no working install at {python} ({type(e).__name__})"
    return (f"embedding-atlas: installed; frontend bundled ({files} files, {mb} MB, offline-capable); its map needs "
            f"WebGPU{' with shader-f16' * (f16_needed == 'True')}{', no WebGL fallback' * (webgpu_only == 'True')};"
            f" this Chromium's WebGPU adapter {'has' if f16 else 'lacks'} it, so the map says 'WebGPU is unavailable'"
            " and draws nothing: not timed")


def browse(browser, url: str, js: str, arg=None) -> dict:
    with browser.new_page(viewport={"width": W + 100, "height": H + 100}) as page:  # a fresh page each time
        page.goto(url)
        return page.evaluate(js, arg)


def timed(f, *args):
    start = time.perf_counter()
    return f(*args), (time.perf_counter() - start) * 1e3


def one_size(browser, url: str, work: Path, n: int, a, notes: list[str]) -> dict[str, dict]:
    """Every candidate on the same n points; server = encoding the payload (datashader: its raster)."""
    x, y, c = layout(n)
    for k, arr in (("x", x), ("y", y), ("c", c)):
        (work / f"{k}.bin").write_bytes(arr.tobytes())
    points, ms = timed(packed, x, y, c)
    (work / "points.bin").write_bytes(points.blob)
    runs, jobs = {}, [("canvas", "canvas.html", CANVAS_JS, (len(points.blob), ms),
                       {"names": [f"class {k}" for k in range(20)], "palette": PALETTE, "digest": points.digest})]
    for name, skip, make, js in (("plotly-gl", a.skip_plotly, plotly_json, PLOTLY_JS),
                                 ("pydeck", a.skip_deck, deck_json, DECK_JS)):
        if not skip:
            text, ms = timed(make, x, y, c)
            (work / f"{name}.json").write_text(text)
            jobs.append((name, f"{name}.html", js, (len(text), ms), None))
    for name, html, js, (payload, ms), arg in jobs:
        try:
            runs[name] = {**browse(browser, f"{url}/{html}", js, arg), "payload": payload, "server": ms}
        except Exception as e:  # noqa: BLE001 - a candidate that fails is a result
            notes.append(f"{name} at {n:,}: failed: {str(e).splitlines()[0][:160]}")
    if not a.skip_datashader:
        try:
            runs["datashader"] = datashader_run(x, y, c)
        except ImportError as e:
            notes.append(f"datashader: not installed ({e})")
    return runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000")
    for name in ("plotly", "deck", "datashader"):
        p.add_argument(f"--skip-{name}", action="store_true")
    p.add_argument("--atlas-python", default="/tmp/ea-venv/bin/python")
    a = p.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="map_render_"))
    os.environ["HOME"] = str(work)
    for name in ("map.js", "points.js", "map.css"):
        shutil.copy(ROOT / "pages" / name, work / name)
    shutil.copy(Path(plotly.__file__).parent / "package_data/plotly.min.js", work / "plotly.min.js")
    shutil.copy(Path(pydeck.__file__).parent / "nbextension/static/index.js", work / "deck.js")  # offline bundle
    for name, js in (("canvas", ""), ("plotly-gl", "plotly.min.js"), ("pydeck", "deck.js")):
        (work / f"{name}.html").write_text(page_html(f'<script src="{js}"></script>' if js else
                                                     '<link rel="stylesheet" href="map.css">'))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(work)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url, results, notes, gl = f"http://127.0.0.1:{server.server_address[1]}", {}, [], [None, "?", False]
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            try:
                gl = browse(browser, f"{url}/canvas.html", GPU_JS)
                notes.append(f"WebGL2 here: {gl[0] or 'none'}; WebGPU adapter: {gl[1]}. Software WebGL (SwiftShader)"
                             " favours the canvas; on a real GPU the WebGL draws would be faster.")
                for n in [int(s) for s in a.sizes.split(",")]:
                    results[n] = one_size(browser, url, work, n, a, notes)
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(work, ignore_errors=True)
    notes.append(atlas_note(a.atlas_python, gl[2]))

    def cell(r, key, ref=None) -> str:
        if key not in r or (ref is not None and not ref.get(key)):
            return "-"
        return f"{r[key] / ref[key]:.1f}x" if ref is not None else f"{r[key]:.0f}"

    print(f"{'renderer':<11}{'N':>10}{'payload MB':>11}{'server ms':>10}{'first ms':>9}{'re-render ms':>13}"
          f"{'lasso ms':>9}{'hover ms':>9}{'first/canvas':>13}{'re-render/canvas':>17}")
    for n, runs in results.items():
        ref = runs.get("canvas")
        for name, r in runs.items():
            print(f"{name:<11}{n:>10,}{r['payload'] / 1e6:>11.1f}{cell(r, 'server'):>10}{cell(r, 'first'):>9}"
                  f"{cell(r, 'rerender'):>13}{cell(r, 'lasso'):>9}{cell(r, 'hover'):>9}"
                  f"{cell(r, 'first', ref or {}):>13}"
                  f"{cell(r, 'rerender', ref or {}):>17}")
    print("server ms: encoding the payload in Python (datashader: the raster + PNG, paid again on every pan/zoom);"
          " first/re-render: in the browser (datashader: the server raster); hover: the canvas's rerun for a hover"
          " card (the points unchanged).")
    for n, runs in results.items():
        if "canvas" in runs:
            print(f"canvas at {n:,}: decoding the packed points took {runs['canvas']['decode']:.0f} ms")
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
