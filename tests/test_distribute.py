"""Training on several devices: DataParallel over 2 CPU devices (JAX) trains, saves and evaluates a tiny model,
a last partial batch does not crash, and the metrics match a one-device run with the same seed and batch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import distribute
from pipeline.errors import ParamsError

pytest.importorskip("jax")

# One epoch of a small CNN on 48 synthetic 32x32 images (4 classes), global batch 16, no dropout (its random
# masks are drawn per shard under DataParallel, so they would differ from one device by design).
SCRIPT = r"""
import json, sys
import numpy as np
import keras
from pipeline import distribute, zoo
from pipeline.dataset import make_sequence

mode, out = sys.argv[1], sys.argv[2]
keras.utils.set_random_seed(7)
devices = distribute.configure(mode, 16)
rng = np.random.default_rng(0)

def images(n):
    y = np.arange(n) % 4
    x = rng.integers(0, 60, size=(n, 32, 32, 3))
    for i, c in enumerate(y):
        x[i, 8 * c:8 * c + 8] += 150  # each class a bright band at its own height
    return x.astype(np.uint8), np.eye(4, dtype=np.float32)[y]

(x, y), (xv, yv), (xp, yp) = images(48), images(20), images(51)
hp = zoo.hyperparameters("cnn", {"dropout": False, "filters": [8, 16], "dense_units": 16})
model = zoo.build("cnn", (32, 32, 3), 4, hp)
model.compile(optimizer=zoo.make_optimizer(hp), loss="categorical_crossentropy", metrics=["accuracy"])

def seq(x, y, shuffle):
    return distribute.divisible(make_sequence(x, y, 16, shuffle=shuffle, seed=3), len(x), 16, devices)

history = model.fit(seq(x, y, True), validation_data=seq(xv, yv, False), epochs=1, verbose=0).history
model.save(f"{out}/model.keras")
loaded = keras.saving.load_model(f"{out}/model.keras")
evaluated = loaded.evaluate(seq(xv, yv, False), verbose=0, return_dict=True)
# 51 samples: the last batch holds 3, which does not divide across 2 devices
partial = loaded.fit(seq(xp, yp, True), epochs=1, verbose=0).history
undivided_error = None
if devices.count > 1:
    try:
        loaded.fit(make_sequence(xp, yp, 16, shuffle=True, seed=3), epochs=1, verbose=0)
    except Exception as exc:
        undivided_error = f"{type(exc).__name__}: {exc}"[:300]
json.dump({"devices": devices.count, "description": devices.description,
           "history": {k: float(v[-1]) for k, v in history.items()}, "evaluate": evaluated,
           "partial_loss": float(partial["loss"][-1]), "undivided_error": undivided_error}, open(f"{out}/result.json", "w"))
"""

TOLERANCE = 1e-4  # absolute, on losses and accuracies after one epoch (measured: identical, difference 0.0)


def _start(mode: str, devices: int, out: Path):
    out.mkdir()
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.Popen([sys.executable, "-c", SCRIPT, mode, str(out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_data_parallel_on_two_cpu_devices_matches_one_device(tmp_path):
    runs = {"two": _start("data_parallel", 2, tmp_path / "two"), "one": _start("none", 1, tmp_path / "one")}
    results = {}
    for name, proc in runs.items():
        log, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, log[-4000:]
        results[name] = json.loads((tmp_path / name / "result.json").read_text())
    two, one = results["two"], results["one"]
    assert two["devices"] == 2 and "data parallel over 2 devices (cpu)" in two["description"]
    assert one["devices"] == 1
    assert (tmp_path / "two/model.keras").stat().st_size > 10_000
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert two["history"][key] == pytest.approx(one["history"][key], abs=TOLERANCE), key
    for key in ("loss", "accuracy"):
        assert two["evaluate"][key] == pytest.approx(one["evaluate"][key], abs=TOLERANCE), key
    assert two["partial_loss"] > 0
    # without the trimming, Keras rejects the 3-sample last batch on 2 devices
    assert two["undivided_error"], "an undivided last batch trained on 2 devices: the trimming is not needed"


def test_trimming_and_params():
    two = distribute.Devices(2)
    assert [distribute.kept_in_batch(n, two) for n in (16, 3, 1)] == [16, 2, 0]
    assert distribute.check({}) == "auto" and distribute.check({"distribution": None}) == "none"
    with pytest.raises(ParamsError, match="train.distribution"):
        distribute.check({"distribution": "model_parallel"})
