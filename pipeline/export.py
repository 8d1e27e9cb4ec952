"""export: a bundle that reproduces `python -m pipeline predict` without this repository.

`python -m pipeline export [--out models/export] [--model models/final/model.keras]` writes to <out>:

    saved_model/      TensorFlow SavedModel (`serve` signature, any batch), inputs by kind
    model.tflite      TFLite, builtin ops only, batch 1: runs in the stock interpreter or ai-edge-litert
    card.json         the model card: class order, each input's shape, its speaker normalisation (policy
                      constants and population statistics), the audio and feature settings and, for a feature
                      input, the openSMILE feature set and version
    pipeline/         the front end and predict of this repository, copied as they are (audio, features,
                      normalisation, model card, predict, its segments and timeline picture, and the few modules
                      they import; no Keras, no zoo)
    requirements.txt  what the front end needs (versions of this environment)
    README.md         how to run it

The models read normalised inputs, as in training; the normalisation is the card's (the population's for a file
with no speaker statistics, a speaker's own or enrolled statistics otherwise), applied by the copied front end:
`cd <out> && python -m pipeline.predict --model model.tflite some.wav` gives the probabilities predict gives here.
export then checks it: the SavedModel and TFLite against Keras on normalised test inputs, and the bundle's own
predict, run in a clean process from the bundle alone, against this repository's predict on test files.
"""
from __future__ import annotations

import argparse
import sys
import logging
import re
import shutil
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.io import atomic_path, write_json, write_text
from pipeline.paths import CARD_NAME, EXPORT_DIR, FINAL_MODEL, MODEL, shipped_model

# The modules the bundle's predict runs (predict imports the rest lazily only for a Keras model); copied as
# they are, so the bundle's front end is this repository's, not a second implementation.
BUNDLE_MODULES = ("__init__.py", "errors.py", "paths.py", "params.py", "files.py", "io.py", "parallel.py",
                  "cli.py", "audio.py", "augment.py", "features.py", "normalisation.py", "model_card.py",
                  "calibration.py", "runtime.py", "predict.py", "segments.py", "timeline.py", "plotstyle.py")
# what those modules import from outside the standard library, for requirements.txt
BUNDLE_REQUIREMENTS = ("numpy", "scipy", "soundfile", "soxr", "pillow", "pyyaml", "tqdm", "opensmile",
                       "audiomentations", "tensorflow", "webrtcvad-wheels", "matplotlib")  # the last two: --segments, --plot


def export(model, out: Path, shapes: dict) -> dict:
    """SavedModel and TFLite of the Keras model; shapes: {input kind: shape without batch}."""
    saved = out / "saved_model"
    shutil.rmtree(saved, ignore_errors=True)
    model.export(str(saved), format="tf_saved_model", verbose=False)
    tflite = out / "model.tflite"
    with atomic_path(tflite) as tmp:
        tmp.write_bytes(to_tflite(model, shapes))
    return {"saved_model": str(saved), "tflite": str(tflite)}


def to_tflite(model, shapes: dict) -> bytes:
    """TFLite flatbuffer with TFLite builtin ops only, so the stock interpreter (tf.lite, ai-edge-litert,
    tflite-runtime) runs it without the Flex delegate.

    The recurrent models loop over time with TensorList ops, which TFLite lowers to builtins only when
    every shape is static and the weights are constants: so the graph is traced for one example
    (batch 1, the usual TFLite input) and its variables frozen first.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    kinds = list(shapes)
    specs = [tf.TensorSpec((1, *shapes[k]), tf.float32, name=k) for k in kinds]  # inputs named by kind
    if len(kinds) == 1:
        fn = tf.function(lambda x: model(x, training=False), input_signature=specs)
    else:
        fn = tf.function(lambda *xs: model(dict(zip(kinds, xs)), training=False), input_signature=specs)
    concrete = fn.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False)
    absl = logging.getLogger("absl")  # "Please consider providing the trackable_obj argument": the
    hush = _Without("trackable_obj")  # graph is frozen, there are no variables for it to keep alive
    absl.addFilter(hush)
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        from pipeline.backend import filtered_stderr

        # the MLIR converter's C++ warnings about options it fills in itself ("Ignored output_format.")
        with filtered_stderr(re.compile(r"Ignored (output_format|drop_control_dependency)")):
            return converter.convert()
    finally:
        absl.removeFilter(hush)


class _Without(logging.Filter):
    """Drops log records whose message contains `text`."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def opensmile_spec(card: dict) -> dict | None:
    """The exact openSMILE feature set and version behind a model's functionals inputs, or None."""
    from pipeline.features import OPENSMILE_SETS

    kinds = [k for k in card["inputs"] if k in OPENSMILE_SETS]
    if not kinds:
        return None
    import opensmile

    return {"version": opensmile.__version__, "feature_level": "Functionals",
            "feature_sets": {k: OPENSMILE_SETS[k] for k in kinds}}


def write_bundle(out: Path, card: dict) -> None:
    """The card, the front end and predict (copied), requirements and a README beside the model files."""
    from importlib.metadata import PackageNotFoundError, version

    import pipeline

    src = Path(pipeline.__file__).parent
    dest = out / "pipeline"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in BUNDLE_MODULES:
        shutil.copy2(src / name, dest / name)
    spec = opensmile_spec(card)
    write_json(out / CARD_NAME, dict(card, **({"opensmile": spec} if spec else {})))
    pins = []
    for package in BUNDLE_REQUIREMENTS:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    write_text(out / "requirements.txt", "\n".join(pins) + "\n")
    write_text(out / "README.md", BUNDLE_README.format(model=card.get("model"), labels=", ".join(card["labels"]),
                                                       inputs=", ".join(card["inputs"])))


BUNDLE_README = """# Exported emotion model: {model}

Classes (the order of the output vector): {labels}. Inputs: {inputs}.

    pip install -r requirements.txt        # the front end: audio, spectrogram, openSMILE, and TensorFlow
    python -m pipeline.predict --model model.tflite recording.wav               # one file of a stranger
    python -m pipeline.predict --model model.tflite --enroll my_voice/ new.wav  # a speaker learned first
    python -m pipeline.predict --model saved_model --json folder/                # the SavedModel, JSON lines
    python -m pipeline.predict --model model.tflite --segments --plot t.png call.wav  # a long recording's segments

`pipeline/` is the front end and predict of the repository the model was trained in, copied as they were:
the audio is standardised and rendered exactly as for training. The models read normalised inputs: each
input is z-scored as card.json's `inputs.<kind>.normalisation` says (`mode`, `min_clips`, `clip`, `eps`, the
training population's `mean` and `std`; with `shrinkage`, a speaker's mean is moved from the population's
towards its own by n / (n + `prior_clips`) for n clips), on the speaker's own statistics when given
(`--speakers`, `--enroll`), else on the population's. Every output row says which statistics it got.
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(EXPORT_DIR), help="output folder (default: %(default)s)")
    parser.add_argument("--model", default=None,
                        help=f"the Keras model to export (default: {FINAL_MODEL}, the final fit; without it {MODEL})")
    parser.add_argument("--check", type=int, default=16, help="test files to compare the exports on")
    args = parser.parse_args(argv)
    from pipeline.backend import quiet_tensorflow

    quiet_tensorflow(tensorflow=True)
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UserError("export needs the TensorFlow backend: run with KERAS_BACKEND=tensorflow")
    from pipeline import model_card
    from pipeline.evaluate import load_model_file

    model_path = Path(args.model) if args.model else shipped_model()
    if not model_path.exists():
        raise UserError(f"{model_path} not found: train a model first (dvc repro final, or dvc repro train)")
    if args.model is None and model_path != FINAL_MODEL:
        print(f"note: {FINAL_MODEL} not found (dvc repro final): exporting the train stage's single-split model "
              f"{model_path}", file=sys.stderr)
    card = model_card.read(model_path.with_name(CARD_NAME))
    model = load_model_file(model_path)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shapes = {kind: tuple(spec["shape"]) for kind, spec in card["inputs"].items()}
    paths = export(model, out, shapes)
    write_bundle(out, card)
    check(model, card, out, args.check, model_path)
    print(f"export: wrote {paths['saved_model']}, {paths['tflite']}, {out / CARD_NAME} and the front end in "
          f"{out / 'pipeline'}")


def check(model, card: dict, out: Path, n: int, model_path: Path) -> None:
    """The exported files against Keras on normalised test inputs, then the bundle's predict, run from the bundle
    alone, against this repository's predict on the same test recordings (each file alone: the cold path)."""
    from pipeline import model_card, runtime
    from pipeline.dataset import load_split, shard_files

    model_card.check_matches(card, model_card.shard_settings(shard_files()), "the test shards used for the check")
    data = load_split("test", model_card.input_kinds(card))
    part = data.subset(np.arange(len(data)) < n)
    x, _ = model_card.model_inputs(part.inputs, card, speakers=part.speakers)
    kinds = model_card.input_kinds(card)
    ref = runtime.KerasRuntime.__new__(runtime.KerasRuntime)
    ref.model, ref.kinds = model, kinds
    expected = ref.predict(x)
    for name, path in (("SavedModel", out / "saved_model"), ("TFLite", out / "model.tflite")):
        got = runtime.load(path, kinds).predict(x)
        diff = float(np.abs(got - expected).max())
        agree = float((got.argmax(1) == expected.argmax(1)).mean())
        print(f"export: {name} at {path}: max |p - p_keras| {diff:.2e}, same top class on {agree:.0%} "
              f"of {len(part)} test files")
        if agree < 1.0 and diff > 1e-3:
            raise UserError(f"{name} export disagrees with Keras (max diff {diff:.3g})")
    files = [p for p in part.meta["source_path"] if p and Path(p).exists()][:4]
    if files:
        diff = bundle_matches_predict(out, files, model_path)
        print(f"export: the bundle's own predict (run from {out} alone) against this repository's on "
              f"{len(files)} test files: max |p - p| {diff:.2e}")


def bundle_matches_predict(out: Path, files: list, model_path: Path) -> float:
    """Max difference between the bundle's predict (a clean process, the bundle's folder its only code, the
    SavedModel runtime) and this repository's predict (Keras) on `files`, each scored cold; UserError when
    they disagree beyond 1e-4."""
    import json
    import os
    import subprocess
    import sys

    def run(cwd, model, extra_env):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(extra_env)
        proc = subprocess.run([sys.executable, "-m", "pipeline.predict", "--json", "--model", str(model),
                               *map(lambda f: str(Path(f).resolve()), files)], cwd=cwd, env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise UserError(f"predict failed in {cwd}: {proc.stderr.strip().splitlines()[-1:]}")
        return [json.loads(line) for line in proc.stdout.splitlines()]

    mine = run(Path.cwd(), Path(model_path).resolve(), {})
    theirs = run(out.resolve(), "saved_model", {"PYTHONPATH": str(out.resolve())})
    diff = max(abs(a["probabilities"][k] - b["probabilities"][k]) for a, b in zip(mine, theirs)
               for k in a["probabilities"])
    if diff > 1e-4 or [a["emotion"] for a in mine] != [b["emotion"] for b in theirs]:
        raise UserError(f"the exported bundle's predict disagrees with this repository's (max diff {diff:.3g})")
    return diff


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
