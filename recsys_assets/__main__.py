"""`python -m recsys_assets`: the command line (recsys_assets.cli)."""

import sys

from recsys_assets.cli import cli

if __name__ == "__main__":
    sys.exit(cli())
