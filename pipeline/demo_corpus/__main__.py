"""python -m pipeline.demo_corpus: the demo stage on its own."""
import sys

from pipeline.cli import run_main
from pipeline.demo_corpus import main

if __name__ == "__main__":
    sys.exit(run_main(main))
