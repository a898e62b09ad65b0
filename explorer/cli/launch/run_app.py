"""The script the app's server runs for every session; it executes the app's ``app.py``.

``streamlit_app.py`` beside it is what Streamlit is handed: it wraps this script in an ``st.App``
with the Host check. Both sit alone in this folder (no ``pages/`` beside them, and nothing else
that Streamlit's path insertion would expose) so that Streamlit serves deep links such as
``/explore`` through app.py's navigation; see :mod:`explorer.cli.app`. Not a module of the
library: nothing imports it.
"""
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    _script = Path(os.environ.get("VENDISCOPE_APP_SCRIPT") or Path(__file__).resolve().parents[3] / "app.py")
    if str(_script.parent) not in sys.path:
        sys.path.insert(0, str(_script.parent))  # the pages import each other as pages._common
    # exec rather than runpy: runpy swaps sys.modules["__main__"], which Streamlit's concurrent
    # sessions (threads of one process) share
    exec(compile(_script.read_text(encoding="utf-8"), str(_script), "exec"),
         {"__name__": "__main__", "__file__": str(_script)})
