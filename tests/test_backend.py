"""No TensorFlow C++ start-up chatter on a CPU machine (cuInit, oneDNN, cudart, CPU flags) in what train,
evaluate, predict and export run; other stderr output still shows."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pipeline.backend import filtered_stderr

ROOT = Path(__file__).resolve().parents[1]
# What a CPU machine printed before (TensorFlow 2.21): absl's pre-init notice, then I/E lines.
NOISE = re.compile(r"cuInit|oneDNN|cudart|cuda drivers|absl::InitializeLog|cpu_feature_guard"
                   r"|rebuild TensorFlow|XNNPACK|trackable_obj|^[IWE]0000 ", re.MULTILINE)

# train's, evaluate's, predict's and export's Keras/TensorFlow calls, on a tiny model
SCRIPT = """
import sys, tempfile
from pathlib import Path
import numpy as np
from pipeline.backend import quiet_tensorflow
quiet_tensorflow()
from pipeline import zoo
from pipeline.evaluate import load_model_file
from pipeline.export import export
from pipeline import runtime
hp = zoo.hyperparameters("mlp", {"dense_units": [8]})
model = zoo.build("mlp", (20,), 3, hp, (np.zeros(20, "float32"), np.ones(20, "float32")))
model.compile(optimizer=zoo.make_optimizer(hp), loss="categorical_crossentropy")
x = np.random.default_rng(0).random((8, 20), dtype=np.float32)
model.fit(x, np.eye(3)[np.arange(8) % 3], epochs=1, verbose=0)
out = Path(tempfile.mkdtemp())
model.save(out / "model.keras")
model = load_model_file(out / "model.keras")
model.predict(x, verbose=0)
export(model, out, {"utterance": (20,)})
runtime.load(out / "saved_model", ("utterance",)).predict({"utterance": x})
runtime.load(out / "model.tflite", ("utterance",)).predict({"utterance": x})
print("a warning that matters", file=sys.stderr)
print("done")
"""


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}  # as a user's shell has it
    return dict(env, PYTHONPATH=str(ROOT), KERAS_BACKEND="tensorflow")


def test_keras_and_tensorflow_calls_print_no_startup_chatter():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=_clean_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "done"
    assert not NOISE.search(proc.stderr), proc.stderr
    assert proc.stderr.strip() == "a warning that matters"


def test_cli_without_a_model_prints_only_its_own_lines():
    proc = subprocess.run([sys.executable, "-m", "pipeline", "models"], cwd=ROOT, env=_clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "vgg19" in proc.stdout
    assert not NOISE.search(proc.stderr), proc.stderr


def test_filtered_stderr_drops_only_the_noise_c_code_writes(capfd):
    with filtered_stderr(re.compile("cuInit")):
        os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n")
        os.write(2, b"W0000 something TensorFlow warns about\n")
        print("python warning", file=sys.stderr)
    err = capfd.readouterr().err
    assert "cuInit" not in err
    assert "W0000 something TensorFlow warns about\n" in err and "python warning\n" in err
