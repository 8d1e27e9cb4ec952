"""Run a trained model whatever its format: a Keras file (models/model.keras), a TensorFlow SavedModel folder or
a TFLite file (an exported bundle). predict scores through this, so the bundle's predict (pipeline/export.py)
is this repository's predict with another runtime, not a second implementation.

    runtime = load(path)                  # by the path: .keras | .tflite | a SavedModel folder
    probs = runtime.predict({"image": x})  # inputs by kind, as model_card.model_inputs makes them

Only the Keras runtime imports the zoo; TFLite runs in `ai-edge-litert` where installed, else TensorFlow's.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pipeline.errors import UserError


def load(path: Path, kinds: tuple):
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found: run `dvc repro` to train a model")
    if path.suffix == ".tflite":
        return TFLiteRuntime(path, kinds)
    if path.is_dir():
        return SavedModelRuntime(path, kinds)
    return KerasRuntime(path, kinds)


def predict_inputs(model, x, batch_size: int = 64) -> np.ndarray:
    """Probabilities of a Keras model for prepared inputs (one array, or {input name: array} for a model of
    several), through the training input pipeline (the papers' 8-bit images scaled per batch)."""
    from pipeline.dataset import make_sequence

    seq = make_sequence(x, None, batch_size, shuffle=False, seed=0)
    return np.asarray(model.predict(seq, verbose=0), dtype=np.float32)


class KerasRuntime:
    def __init__(self, path: Path, kinds: tuple):
        from pipeline.backend import quiet_tensorflow

        quiet_tensorflow()
        from pipeline.zoo import load_model  # registers the zoo's custom layers

        self.model, self.kinds = load_model(path), tuple(kinds)

    def predict(self, x: dict) -> np.ndarray:
        return predict_inputs(self.model, x[self.kinds[0]] if len(self.kinds) == 1 else {k: x[k] for k in self.kinds})


class SavedModelRuntime:
    def __init__(self, path: Path, kinds: tuple):
        from pipeline.backend import quiet_tensorflow

        quiet_tensorflow(tensorflow=True)
        import tensorflow as tf

        self.tf, self.kinds = tf, tuple(kinds)
        self.loaded = tf.saved_model.load(str(path))  # keep it: serve's variables live as long as it does
        self.serve = self.loaded.serve

    def predict(self, x: dict) -> np.ndarray:
        tf = self.tf
        if len(self.kinds) == 1:
            return np.asarray(self.serve(tf.constant(scaled(x[self.kinds[0]]), dtype=tf.float32)))
        return np.asarray(self.serve({k: tf.constant(scaled(x[k]), dtype=tf.float32) for k in self.kinds}))


class TFLiteRuntime:
    """The batch-1 TFLite model run on each row; its inputs matched to the kinds by name."""

    def __init__(self, path: Path, kinds: tuple):
        from pipeline.backend import filtered_stderr

        with filtered_stderr(re.compile("Created TensorFlow Lite XNNPACK delegate")):  # C++ INFO line
            self.interp = tflite_interpreter(path)
            self.interp.allocate_tensors()
        details = self.interp.get_input_details()
        self.kinds = tuple(kinds)
        self.index = {}
        for kind in self.kinds:
            match = [d for d in details if kind in d["name"]] or (details if len(details) == 1 else [])
            if len(match) != 1:
                raise UserError(f"{path}: no input named for {kind!r} (inputs: {[d['name'] for d in details]})")
            self.index[kind] = match[0]["index"]
        self.output = self.interp.get_output_details()[0]["index"]

    def predict(self, x: dict) -> np.ndarray:
        n = len(x[self.kinds[0]])
        out = []
        for i in range(n):
            for kind in self.kinds:
                self.interp.set_tensor(self.index[kind], scaled(x[kind][i:i + 1]).astype(np.float32))
            self.interp.invoke()
            out.append(self.interp.get_tensor(self.output)[0].copy())
        return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)


def scaled(x: np.ndarray) -> np.ndarray:
    """What the model reads: the papers' 8-bit image scaled to 0..1 (the Keras input pipeline does it per batch)."""
    x = np.asarray(x)
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32, copy=False)


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
