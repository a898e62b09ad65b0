"""A visitor of a Streamlit app without a browser: one session over the app's WebSocket, speaking
Streamlit's own protocol (the BackMsg/ForwardMsg protobufs that ship with streamlit).

It asks for what a browser asks for (a page by its script hash, a widget's new value, a fragment's
rerun), keeps a browser's message cache (a large message seen in the last two runs comes back as a
reference) and fetches the media files a run refers to, but draws nothing. A run is timed from the
request to its last script_finished, plus its media fetches; a run counts as over once no new run
began within ``settle`` seconds (an st.rerun or a fragment's own rerun belongs to the answer).
That is what the server makes a user wait for, without the time the user's own machine spends
drawing. benchmarks/load.py uses it to measure how the server scales with concurrent users on a
machine too small to also run a browser per user.

    async with Session("http://127.0.0.1:8501") as s:
        home = await s.run()                          # the default page
        explore = await s.run(page="explore")         # a page by its URL path
        lasso = s.component("vendiscope_map")         # the map's element on that page
        await s.run(widgets={lasso.id: {"selection": {"lasso": [[0, 0], [1, 0], [1, 1]]}}},
                    fragment=lasso.fragment)
"""
from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

MEDIA_FETCHES = 6  # parallel requests of one browser to one host
MAX_CACHED_AGE = 2  # script runs a browser keeps an unused cached message (Streamlit's frontend)


@dataclass
class Element:
    kind: str  # the proto's element type ("bidi_component", "markdown", ...)
    id: str  # a widget's id ("" for plain elements)
    fragment: str  # the fragment it was drawn in ("" for the page)
    proto: Any


@dataclass
class Run:
    seconds: float
    status: str  # the last script_finished status of the run
    texts: list[str] = field(default_factory=list)  # markdown, headings, captions, metrics' labels
    media: int = 0  # media files fetched
    bytes: int = 0  # WebSocket bytes received
    sent_in_full: list[str] = field(default_factory=list)  # custom components not answered from the cache


class Session:
    """One browserless visitor; use as ``async with Session(url) as s``."""

    def __init__(self, url: str, *, settle: float = 0.15, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.settle = settle
        self.timeout = timeout
        self.pages: dict[str, str] = {}  # URL path ("" for the default page) -> page script hash
        self.elements: list[Element] = []  # the last run's elements, in order
        self._used: dict[str, int] = {}  # cached message hash -> the run that last used it
        self._seen: dict[str, Any] = {}  # cached message hash -> the message
        self._runs = 0
        self._ws: Any = None

    async def __aenter__(self) -> Session:
        import websockets

        ws_url = "ws" + self.url[len("http"):] + "/_stcore/stream"
        self._ws = await websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None,
                                            additional_headers={"Origin": self.url})
        return self

    async def __aexit__(self, *exc) -> None:
        await self._ws.close()

    def component(self, name: str) -> Element:
        """The last run's custom component of this name (its widget id and fragment); after fragment
        runs, the latest drawn."""
        for e in reversed(self.elements):
            if e.kind == "bidi_component" and e.proto.component_name.endswith(name):
                return e
        raise LookupError(f"no component {name!r} in the last run")

    async def run(self, *, page: str | None = None, widgets: dict[str, Any] | None = None,
                  fragment: str = "") -> Run:
        """Rerun the script as a browser asks for it, and wait until the server has answered."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        rerun = msg.rerun_script
        rerun.query_string = ""
        if page is not None:
            rerun.page_script_hash = self.pages[page]
        for wid, value in (widgets or {}).items():
            state = rerun.widget_states.widgets.add()
            state.id = wid
            state.json_value = json.dumps(value)
        rerun.fragment_id = fragment
        rerun.cached_message_hashes.extend(sorted(self._used))
        start = time.monotonic()
        await self._ws.send(msg.SerializeToString())
        result = await asyncio.wait_for(self._answer(start, keep=bool(fragment)), self.timeout)
        return result

    async def _answer(self, start: float, *, keep: bool) -> Run:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        run = Run(0.0, "")
        media: list[str] = []
        if not keep:
            self.elements = []
        finished, answered = False, start
        while True:
            try:
                raw = await asyncio.wait_for(self._ws.recv(), self.settle if finished else None)
            except asyncio.TimeoutError:
                break  # finished, and no new run began within `settle`
            run.bytes += len(raw)
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            cached = msg.WhichOneof("type") == "ref_hash"
            if cached:  # a message this session has cached
                self._used[msg.ref_hash] = self._runs
                msg = self._seen[msg.ref_hash]
            elif msg.metadata.cacheable:
                self._used[msg.hash] = self._runs
                self._seen[msg.hash] = msg
            kind = msg.WhichOneof("type")
            if kind == "navigation":
                self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                which = element.WhichOneof("type") or ""
                proto = getattr(element, which) if which else element
                self.elements.append(Element(which, getattr(proto, "id", "") if which else "",
                                             msg.delta.fragment_id, proto))
                run.texts += _texts(which, proto)
                if which == "bidi_component" and not cached:
                    run.sent_in_full.append(proto.component_name.rsplit(".", 1)[-1])
                media += _media_urls(proto)
            elif kind == "script_finished":
                finished, run.status = True, ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
                answered = time.monotonic()
                self._age_cache()
            elif kind == "session_status_changed" and msg.session_status_changed.script_is_running:
                finished = False  # another run began (an st.rerun, a fragment's own rerun): wait for it too
        # timed to the last script_finished (the settle wait only shows that no run followed),
        # plus the media fetches (after it: a browser fetches while the run goes on)
        run.media, fetching = len(media), time.monotonic()
        await asyncio.to_thread(self._fetch, media)
        run.seconds = (answered - start) + (time.monotonic() - fetching)
        return run

    def _age_cache(self) -> None:
        """Forget cached messages unused for MAX_CACHED_AGE runs, as the browser does."""
        self._runs += 1
        for h in [h for h, used in self._used.items() if self._runs - used > MAX_CACHED_AGE]:
            del self._used[h], self._seen[h]

    def _fetch(self, urls: list[str]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        def one(url: str) -> None:
            with urllib.request.urlopen(self.url + "/" + url.lstrip("/"), timeout=self.timeout) as r:
                r.read()

        with ThreadPoolExecutor(MEDIA_FETCHES) as pool:
            list(pool.map(one, dict.fromkeys(urls)))


def _texts(kind: str, proto: Any) -> list[str]:
    if kind in ("markdown", "heading", "text", "caption"):
        return [proto.body]
    if kind == "metric":
        return [proto.label]
    return []


def _media_urls(proto: Any) -> list[str]:
    """Every string field of an element that names a media file the browser would load."""
    from google.protobuf.message import Message

    found: list[str] = []
    todo = [proto]
    while todo:
        m = todo.pop()
        for fd, value in m.ListFields():
            values = value if fd.is_repeated else [value]
            for v in values:
                if isinstance(v, Message):
                    todo.append(v)
                elif isinstance(v, str) and "/media/" in v[:8]:
                    found.append(v)
    return found


def map_points(session: Session, name: str = "vendiscope_map") -> dict[str, Any]:
    """The points of the last run's map, from the packed element drawn beside it whose digest the
    map names (explorer/maps/packed.py): arrays x, y, c and the texts."""
    from explorer.maps.packed import unpack_points

    digest = json.loads(session.component(name).proto.json)["points"]
    for e in session.elements:
        if (e.kind == "bidi_component" and e.proto.WhichOneof("data") == "bytes"
                and e.proto.bytes[8:40] == digest.encode()):
            return unpack_points(e.proto.bytes)
    raise LookupError(f"the points of {name!r} ({digest}) were not in the last run")
