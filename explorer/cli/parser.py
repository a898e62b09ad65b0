"""The ``vendiscope`` command: wires the commands, each in its own module with ``add_parser``
and ``run``, and turns failures into one line and a distinct exit code:

- 0: done;
- 1: a ``--fail-if`` condition held (the command itself worked);
- 2: a usage or input error, or the environment refused (no such file, bad data, disk full,
  a database or file that cannot be written): ValueError (InputError included), OSError and
  sqlite3.Error;
- 3: an internal error (a bug): any other exception, RuntimeError, KeyError and IndexError
  included, so a bug never passes for bad input. One line here, the traceback in
  ``vendiscope-error.log`` in the cache folder, or on the terminal with ``VENDISCOPE_DEBUG=1``;
- 130: interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import traceback

from explorer.cli import app, audit, compare, diagnostics, embed, flags, map, represent, score, select

OK, GATE_FAILED, INPUT_ERROR, INTERNAL_ERROR, INTERRUPTED = 0, 1, 2, 3, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vendiscope", description="Dataset diversity explorer.",
                                     epilog="exit codes: 0 ok, 1 --fail-if held, 2 usage or input error, "
                                            "3 internal error, 130 interrupted")
    sub = parser.add_subparsers(dest="command", required=True)
    score.add_parser(sub)
    embed.add_parser(sub)
    compare.add_parser(sub)
    audit.add_parser(sub)
    represent.add_parser(sub)
    select.add_parser(sub)
    map.add_parser(sub)
    diagnostics.add_parser(sub)
    flags.add_parsers(sub)
    app.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # a usage error exits 2 here, as argparse does
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return INTERRUPTED
    except ValueError as err:  # InputError and the library's bad-data errors
        print(f"error: {err}", file=sys.stderr)
        return INPUT_ERROR
    except (OSError, sqlite3.Error) as err:  # disk full, unreadable files, a locked or broken database
        filename = getattr(err, "filename", None)
        where = f" ({filename})" if filename else ""
        print(f"error: {getattr(err, 'strerror', None) or err}{where}", file=sys.stderr)
        return INPUT_ERROR
    except Exception as err:  # noqa: BLE001 - a bug: one line, the details kept for the report
        if os.environ.get("VENDISCOPE_DEBUG"):
            raise
        log = _save_traceback()
        print(f"internal error: {type(err).__name__}: {err} (a bug; details in {log}, or run again with "
              "VENDISCOPE_DEBUG=1 to see the traceback)", file=sys.stderr)
        return INTERNAL_ERROR


def _save_traceback() -> str:
    from explorer.store.cache import cache_root

    try:
        path = cache_root() / "vendiscope-error.log"
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(traceback.format_exc() + "\n")
        return str(path)
    except OSError:
        return "stderr (the cache folder is not writable):\n" + traceback.format_exc()


if __name__ == "__main__":
    sys.exit(main())
