"""What ``vendiscope app`` hands to ``streamlit run``: the app (``run_app.py``, which executes
``app.py``) as an ``st.App``, Streamlit's supported way to add ASGI middleware, here the Host
check of :class:`explorer.cli.app.HostCheck`.

Streamlit itself checks the Host header of the WebSocket only (``server.allowedHosts``); the
middleware refuses every HTTP request too (the page, static files, media, uploads, health), so a
page on a foreign name rebound to this machine (DNS rebinding) gets nothing from the server.
``streamlit run`` finds the ``app`` below by reading this file, and serves it with its own
settings (address, port, allowed hosts). Not a module of the library: nothing imports it.
"""
import streamlit as st
from starlette.middleware import Middleware

from explorer.cli.app import HostCheck

app = st.App("run_app.py", middleware=[Middleware(HostCheck)])
