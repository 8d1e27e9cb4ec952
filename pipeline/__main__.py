"""One CLI: `python -m pipeline <command>` (pipeline.cli). Each stage is also `python -m pipeline.<stage>`."""
import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
