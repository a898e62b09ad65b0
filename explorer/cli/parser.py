"""The ``vendiscope`` command: wires the commands, each in its own module with ``add_parser``
and ``run``."""
from __future__ import annotations

import argparse
import sys

from explorer.cli import app, compare, diagnostics, embed, flags, score


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vendiscope", description="Dataset diversity explorer.")
    sub = parser.add_subparsers(dest="command", required=True)
    score.add_parser(sub)
    embed.add_parser(sub)
    compare.add_parser(sub)
    diagnostics.add_parser(sub)
    flags.add_parsers(sub)
    app.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
