"""``python -m explorer.cli``: the same as the ``vendiscope`` command."""
import sys

from explorer.cli.parser import main

if __name__ == "__main__":
    sys.exit(main())
