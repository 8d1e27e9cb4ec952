"""One CLI: `python -m pipeline <command>`. Each stage is also `python -m pipeline.<stage>`."""
from __future__ import annotations

import importlib
import logging
import sys

COMMANDS = {
    "demo": ("pipeline.demo_corpus", "synthesise the built-in demo corpus (eSpeak NG)"),
    "ingest": ("pipeline.ingest", "corpora -> manifest + quarantine report"),
    "split": ("pipeline.split", "train / val / test, speaker-independent by default"),
    "balance": ("pipeline.balance", "undersample / oversample (augmented) the training split"),
    "render": ("pipeline.render", "standardise audio, render spectrograms into Parquet shards"),
    "train": ("pipeline.train", "train the model named by `model`"),
    "evaluate": ("pipeline.evaluate", "metrics, confusions and plots on the test split"),
    "crossval": ("pipeline.crossval", "K speaker folds x seeds of the model, the eGeMAPS + SVM baseline beside it"),
    "predict": ("pipeline.predict", "emotion of new recordings with the trained model"),
    "export": ("pipeline.export", "export the trained model (SavedModel + TFLite)"),
    "models": ("pipeline.zoo", "list the model zoo"),
}


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)


def run_main(main, argv=None) -> int:
    """Run a command; a user error is one line on stderr and exit status 2, never a traceback."""
    from pipeline.errors import UserError

    setup_logging()
    try:
        main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def usage() -> str:
    lines = ["usage: python -m pipeline <command> [options]", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return run_main(module.main, rest)


if __name__ == "__main__":
    sys.exit(main())
