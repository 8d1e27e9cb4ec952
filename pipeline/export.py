"""export: the trained model as a TensorFlow SavedModel and a TFLite file that run without the pipeline.

`python -m pipeline export [--out models/export]` writes <out>/saved_model/, <out>/model.tflite and
<out>/card.json (the model card: class order of the output vector, input kind and shape, the audio/feature
settings the input is made with and, for a speaker-standardised model, that its input is z-scored per speaker
with the population statistics for a lone file), then checks that both artifacts agree with Keras on the test split.
"""
from __future__ import annotations

import argparse
import logging
import re
import shutil
from pathlib import Path

import numpy as np

from pipeline.backend import filtered_stderr
from pipeline.errors import UserError
from pipeline.io import atomic_path, write_json
from pipeline.paths import CARD_NAME, EXPORT_DIR

log = logging.getLogger("pipeline.export")


def export(model, out: Path, input_shape: tuple) -> dict:
    import tensorflow as tf

    saved = out / "saved_model"
    shutil.rmtree(saved, ignore_errors=True)
    model.export(str(saved), format="tf_saved_model", verbose=False)
    tflite = out / "model.tflite"
    with atomic_path(tflite) as tmp:
        tmp.write_bytes(to_tflite(model, input_shape))
    return {"saved_model": str(saved), "tflite": str(tflite)}


def to_tflite(model, input_shape: tuple) -> bytes:
    """TFLite flatbuffer with TFLite builtin ops only, so the stock interpreter (tf.lite, ai-edge-litert,
    tflite-runtime) runs it without the Flex delegate.

    The recurrent models loop over time with TensorList ops, which TFLite lowers to builtins only when
    every shape is static and the weights are constants: so the graph is traced for one example
    (batch 1, the usual TFLite input) and its variables frozen first.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec((1, *input_shape), tf.float32))
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


def run_saved_model(path: Path, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return np.asarray(loaded.serve(tf.constant(x, dtype=tf.float32)))


def tflite_interpreter(path: Path):
    """The LiteRT interpreter where ai-edge-litert is installed, else TensorFlow's own (deprecated there)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "tf.lite.Interpreter is deprecated"
            return tf.lite.Interpreter(model_path=str(path))
    return Interpreter(model_path=str(path))


def run_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    """Run the batch-1 TFLite model on each row of x."""
    with filtered_stderr(re.compile("Created TensorFlow Lite XNNPACK delegate")):  # C++ INFO line
        interp = tflite_interpreter(path)
        interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outp = interp.get_output_details()[0]
    results = []
    for row in x:
        interp.set_tensor(inp["index"], row[None].astype(np.float32))
        interp.invoke()
        results.append(interp.get_tensor(outp["index"])[0].copy())
    return np.stack(results)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline export", description=__doc__)
    parser.add_argument("--out", default=str(EXPORT_DIR), help="output folder (default: %(default)s)")
    parser.add_argument("--check", type=int, default=32, help="test files to compare Keras and exports on")
    args = parser.parse_args(argv)
    from pipeline.backend import quiet_tensorflow

    quiet_tensorflow(tensorflow=True)
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UserError("export needs the TensorFlow backend: run with KERAS_BACKEND=tensorflow")
    from pipeline.evaluate import load_model

    model, info = load_model()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = export(model, out, tuple(info["input_shape"]))
    write_json(out / CARD_NAME, info)  # the model card: labels, input and the settings it was made with
    from pipeline import model_card
    from pipeline.dataset import load_split, shard_files

    model_card.check_matches(info, model_card.shard_settings(shard_files()), "the test shards used for the check")
    data = load_split("test", info["input"])
    x = model_card.inputs(data.x, data.meta["speaker"].to_numpy(), info)[: args.check]
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    ref = np.asarray(model.predict(x, verbose=0))
    for name, fn, path in (("SavedModel", run_saved_model, out / "saved_model"),
                           ("TFLite", run_tflite, out / "model.tflite")):
        got = fn(path, x)
        diff = float(np.abs(got - ref).max())
        agree = float((got.argmax(1) == ref.argmax(1)).mean())
        print(f"export: {name} at {path}: max |p - p_keras| {diff:.2e}, same top class on {agree:.0%} "
              f"of {len(x)} test files")
        if agree < 1.0 and diff > 1e-3:
            raise UserError(f"{name} export disagrees with Keras (max diff {diff:.3g})")
    print(f"export: wrote {paths['saved_model']}, {paths['tflite']}, {out / CARD_NAME}")


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
