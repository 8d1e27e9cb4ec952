"""openSMILE and TensorFlow in one process: the order pipeline.backend guarantees keeps extraction working."""
import subprocess
import sys

CODE = """
import numpy as np
from pipeline.backend import quiet_tensorflow
quiet_tensorflow(tensorflow=True)          # what train / evaluate / predict / export do first
from pipeline.features import smile_functionals
y = (np.random.default_rng(0).normal(size=48000) * 0.1).astype('float32')
print(smile_functionals(y, 16000, 'compare').shape, smile_functionals(y, 16000, 'egemaps').shape)
"""


def test_opensmile_extracts_after_tensorflow_was_loaded_the_pipeline_way():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]  # loaded after TensorFlow, openSMILE crashed the process
    assert "(6373,) (88,)" in proc.stdout
