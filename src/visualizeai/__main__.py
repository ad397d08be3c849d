"""``python -m visualizeai …``: the same command line as ``visualizeai …``."""

import sys

from visualizeai.cli import main

if __name__ == "__main__":
    sys.exit(main())
