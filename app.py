"""Vendiscope's Streamlit entry: page navigation over pages/.

Run with ``vendiscope app [PATH ...]`` (binds 127.0.0.1:8501) or ``streamlit run app.py -- PATH``.
"""
import sys

import streamlit as st

st.set_page_config(page_title="Vendiscope", page_icon=":material/blur_on:", layout="wide")
if "cli_sources" not in st.session_state:
    st.session_state["cli_sources"] = [a for a in sys.argv[1:] if a]

page = st.navigation([
    st.Page("pages/overview.py", title="Overview", icon=":material/insights:", default=True),
    st.Page("pages/explore.py", title="Explore", icon=":material/scatter_plot:"),
    st.Page("pages/modes.py", title="Modes", icon=":material/stacked_line_chart:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
])
page.run()
