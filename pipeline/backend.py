"""Backend-neutral helpers: which accelerator Keras will use, without importing TensorFlow by hand."""
from __future__ import annotations

import os


def quiet_tensorflow() -> None:
    """TensorFlow's C++ start-up chatter (CUDA probes, CPU flags) drowns the stage's own log.

    Only the log level: TF_ENABLE_ONEDNN_OPTS=0 would also silence the oneDNN notice, but it makes CPU
    training 2-3x slower (cnn_blstm_attention, 64x64, 2 cores: 72 -> 164 images/s with oneDNN on).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
