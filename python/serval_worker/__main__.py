"""Entry point: ``python -m serval_worker --model-dir DIR [--fd 3]``."""
import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())
