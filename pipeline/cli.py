"""The command line: `python -m pipeline <command>` (pipeline/__main__.py) and each stage's own
`python -m pipeline.<stage>` run through run_main here: logging, every params check, and user errors as one
line and exit status 2."""
from __future__ import annotations

import importlib
import logging
import sys

COMMANDS = {
    "inventory": ("pipeline.inventory", "what data.raw_dir holds (links followed), for DVC"),
    "demo": ("pipeline.demo_corpus", "synthesise the built-in demo corpus (eSpeak NG)"),
    "ingest": ("pipeline.ingest", "corpora -> manifest + quarantine report"),
    "split": ("pipeline.split", "train / val / test, speaker-independent by default"),
    "balance": ("pipeline.balance", "undersample / oversample (augmented) the training split"),
    "render": ("pipeline.render", "standardise audio, render spectrograms into Parquet shards"),
    "train": ("pipeline.train", "train the model named by `model`"),
    "evaluate": ("pipeline.evaluate", "metrics, confusions and plots on the test split"),
    "crossval": ("pipeline.crossval", "K speaker folds x seeds of the model, the eGeMAPS + SVM baseline beside it"),
    "crosscorpus": ("pipeline.crosscorpus", "train on some corpora, test on another (shared classes), baseline beside"),
    "final": ("pipeline.final", "the model predict and export use: every labelled speaker, crossval's recipe"),
    "predict": ("pipeline.predict", "emotion of new recordings with the trained model"),
    "export": ("pipeline.export", "export the trained model (SavedModel + TFLite)"),
    "models": ("pipeline.zoo", "list the model zoo"),
}


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)


# Every stage checks all of params.yaml when it loads it, so a bad value anywhere (an unknown model,
# corpus or channel mode, a bad ratio, a misspelt key) fails the first stage that runs, in a second and
# naming its key, not after hours of work. Each section's reader declares the keys the section may hold
# (params.section(..., keys=...)); a top-level section that no reader reads is unknown. The CLI hands
# params.load these readers (all Keras-free), so params.py, a utility, does not import the stages that use it.
PARAMS_CHECKS = (
    ("pipeline.demo_corpus", "read_params"),
    ("pipeline.ingest", "IngestConfig.from_params"),
    ("pipeline.split", "SplitConfig.from_params"),
    ("pipeline.balance", "settings"),
    ("pipeline.audio", "AudioConfig.from_params"),
    ("pipeline.features", "FeatureConfig.from_params"),
    ("pipeline.segments", "SegmentConfig.from_params"),
    ("pipeline.compute", "ComputeConfig.from_params"),
    ("pipeline.train", "TrainConfig.from_params"),
    ("pipeline.crossval", "CrossvalConfig.from_params"),
    ("pipeline.crosscorpus", "CrossCorpusConfig.from_params"),
)


class _Reads(dict):
    """params, recording which top-level sections the readers look up."""

    def __init__(self, params: dict):
        super().__init__(params)
        self.read: set = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


def check_every_section(params: dict) -> None:
    from pipeline.errors import ParamsError
    from pipeline.params import unknown

    reads = _Reads(params)
    for module_name, qualname in PARAMS_CHECKS:
        reader = importlib.import_module(module_name)
        for attr in qualname.split("."):
            reader = getattr(reader, attr)
        reader(reads)
    for key in params:
        if key not in reads.read:
            raise ParamsError(str(key), unknown(key, sorted(reads.read, key=str), "params.yaml has", "section"))


def run_main(main, argv=None) -> int:
    """Run a command; a user error is one line on stderr and exit status 2, never a traceback."""
    from pipeline.errors import UserError
    from pipeline.params import add_check

    setup_logging()
    add_check(check_every_section)
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
    lines += [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
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
