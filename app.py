"""Vendiscope's Streamlit entry: page navigation over pages/.

Run with ``vendiscope app [PATH ...]`` (binds 127.0.0.1:8501). Pages are named by absolute paths
because Streamlit is handed a small launcher elsewhere (explorer/cli/launch), which keeps deep
links such as /explore inside this navigation.
"""
import sys
from pathlib import Path

import streamlit as st

from explorer.cli.app import app_settings
from pages._flags import STORE_ERRORS, flags_panel, problem_line
from pages._notices import show_notices
from pages._sidebar import sidebar

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="Vendiscope", page_icon=":material/blur_on:", layout="wide")
if "app_settings" not in st.session_state:  # what vendiscope app allows this app to open
    st.session_state["app_settings"] = app_settings(sys.argv[1:])

show_notices()  # what the action before the last rerun did
# the shared choices, drawn here so that they stay put when the page changes
st.session_state["_choice"] = choice = sidebar()
if choice is not None:
    flags_panel(choice)  # on every page: list, unflag, rename, export

page = st.navigation([
    st.Page(PAGES / "overview.py", title="Overview", icon=":material/insights:", default=True),
    st.Page(PAGES / "explore.py", title="Explore", icon=":material/scatter_plot:"),
    st.Page(PAGES / "modes.py", title="Modes", icon=":material/stacked_line_chart:"),
    st.Page(PAGES / "compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page(PAGES / "audit.py", title="Audit", icon=":material/fact_check:"),
    st.Page(PAGES / "represent.py", title="Representation", icon=":material/groups:"),
    st.Page(PAGES / "curate.py", title="Curate", icon=":material/filter_alt:"),
])
try:
    page.run()
except STORE_ERRORS as err:  # a full disk, a damaged flag database or cache: one line, not a traceback
    st.error(f"This page cannot be shown: {problem_line(err)}", icon=":material/error:")
