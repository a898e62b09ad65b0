"""``vendiscope diagnostics``: the registered diagnostics (built-in and plugins), by name."""
from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("diagnostics", help="list the registered diagnostics (built-in ones and plugins)")
    p.add_argument("--json", action="store_true", help="print JSON: name -> description")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from explorer.diagnostics.catalog import registered

    known = {name: cls.description for name, cls in registered().items()}
    if args.json:
        print(json.dumps(known))
    else:
        width = max(map(len, known))
        print("\n".join(f"{name:<{width}}  {text}" for name, text in known.items()))
    return 0
