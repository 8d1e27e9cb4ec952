"""Backend-neutral helpers: which accelerator Keras will use, without importing TensorFlow by hand."""
from __future__ import annotations

import os
import re
import sys
import tempfile

# TensorFlow's C++ start-up notices on a machine without a GPU: absl prints them before it reads
# TF_CPP_MIN_LOG_LEVEL ("All log messages before absl::InitializeLog() is called are written to STDERR"),
# so the log level alone does not hide them. Anything else TensorFlow says is passed on.
_STARTUP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on"
    r"|cudart_stub\.cc|Could not find cuda drivers|failed call to cuInit|cuda_platform\.cc.*cuInit"
    r"|cpu_feature_guard\.cc|To enable the following instructions:|rebuild TensorFlow with the appropriate"
    r"|Unable to register cu(DNN|FFT|BLAS) factory|computation_placer\.cc.*already registered"
    r"|TF-TRT Warning: Could not find TensorRT")
_quiet = False


def quiet_tensorflow(tensorflow: bool = False) -> None:
    """Import Keras (and TensorFlow when it is Keras' backend, or `tensorflow`) without TensorFlow's
    C++ start-up chatter (CUDA probes, CPU flags, oneDNN notice), which drowns the stage's own log.

    Later C++ logs keep TF_CPP_MIN_LOG_LEVEL=2 (warnings and errors only, as TensorFlow's own INFO lines
    would bury the stage's). TF_ENABLE_ONEDNN_OPTS=0 would also silence the oneDNN notice, but it makes
    CPU training 2-3x slower (cnn_blstm_attention, 64x64, 2 cores: 72 -> 164 images/s with oneDNN on).
    Call it before anything imports Keras; later calls do nothing.
    """
    global _quiet
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _quiet:
        return
    _quiet = True
    load_opensmile_first()
    with filtered_stderr(_STARTUP_NOISE):
        import keras

        if tensorflow or keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe (cuInit) happens here, once


def load_opensmile_first() -> None:
    """Load openSMILE's library before TensorFlow's. Loaded after TensorFlow, its first extraction corrupts
    the heap ("malloc(): invalid size", a segfault; checked with opensmile 2.6 and TensorFlow 2.20); loaded
    first, both work in one process (predict scores a few files in-process, tests render in-process)."""
    try:
        import opensmile  # noqa: F401
    except ImportError:  # a machine without the audio stack (a GPU box training from shards)
        pass


class filtered_stderr:
    """Capture file descriptor 2 (C++ writes too, not only sys.stderr) and pass on what `noise` does not match."""

    def __init__(self, noise: re.Pattern):
        self.noise = noise

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        self.capture = tempfile.TemporaryFile()
        os.dup2(self.capture.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.capture.seek(0)
        text = self.capture.read().decode("utf-8", "replace")
        self.capture.close()
        kept = [line for line in text.splitlines(keepends=True) if not self.noise.search(line)]
        if kept:
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
        return False


def has_gpu() -> bool:
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "jax":
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if backend == "torch":
            import torch

            return torch.cuda.is_available()
    except Exception:
        return False
    return False
