"""train.speaker_adversarial: the spectrogram model's embedding trained against a speaker classifier behind a
gradient reversal. The reversal is the identity forward and flips the gradient back on every backend; the
trained model that comes out is the emotion model alone (what predict and the card know), resumable."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

PARAMS = yaml.safe_load(open("params.yaml"))


def _config(weight: float, **train):
    from pipeline.train import TrainConfig

    models = dict(PARAMS["models"], cnn_pooled=dict(PARAMS["models"]["cnn_pooled"], filters=[4, 8], time_pool=1))
    params = dict(PARAMS, model="cnn_pooled", models=models,
                  train=dict(PARAMS["train"], epochs=2, batch_size=8, speaker_adversarial=weight, **train))
    return TrainConfig.from_params(params)


def _data(n: int = 32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 16, 16, 1)).astype(np.float32)
    labels = np.array(["angry", "sad"] * (n // 2))
    speakers = np.array(["a", "a", "b", "b"] * (n // 4))
    return x, labels, speakers


def test_gradient_reversal_is_the_identity_forward_and_flips_the_gradient():
    keras = pytest.importorskip("keras")
    from keras import ops

    from pipeline.zoo.blocks import GradientReversal

    x = np.array([[1.0, -2.0, 3.0]], np.float32)
    layer = GradientReversal(0.3)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x)), x, atol=1e-6)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        v = tf.Variable(x)
        with tf.GradientTape() as tape:
            out = tf.reduce_sum(layer(v) * 2.0)
        grad = tape.gradient(out, v).numpy()
    elif backend == "jax":
        import jax

        grad = np.asarray(jax.grad(lambda v: (layer(v) * 2.0).sum())(x))
    else:
        pytest.skip(f"gradient check written for tensorflow and jax, not {backend}")
    np.testing.assert_allclose(grad, np.full_like(x, -0.6), atol=1e-6)  # d/dx of 2x, reversed and scaled


def test_an_adversarial_training_returns_the_emotion_model_alone():
    pytest.importorskip("keras")
    from pipeline.train import fit

    x, labels, speakers = _data()
    model, history, _, _ = fit(_config(0.5), {"image": x}, labels, ["angry", "sad"], {"image": x[:8]}, labels[:8],
                               verbose=0, train_speakers=speakers)
    assert model.output_shape == (None, 2)  # the emotion's softmax (prior-corrected), no speaker columns
    probs = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert "speaker" not in [layer.name for layer in model.layers]
    assert np.isfinite(history["loss"]).all()


def test_off_without_the_weight_or_speakers_and_for_the_functionals():
    pytest.importorskip("keras")
    from pipeline.train import _adversary_speakers

    speakers = np.array(["a", "b", "a"])
    assert _adversary_speakers(_config(0.0), "image", speakers) is None
    assert _adversary_speakers(_config(0.5), "image", None) is None
    assert _adversary_speakers(_config(0.5), "compare", speakers) is None  # a linear read-out has no embedding
    assert _adversary_speakers(_config(0.5), "image", np.array(["a", "a"])) is None
    np.testing.assert_array_equal(_adversary_speakers(_config(0.5), "image", speakers), [[1, 0], [0, 1], [1, 0]])


def test_an_interrupted_adversarial_training_resumes(tmp_path):
    keras = pytest.importorskip("keras")
    from pipeline.train import fit

    x, labels, speakers = _data()

    class Stop(Exception):
        pass

    class StopAfterFirst(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise Stop()

    cfg = _config(0.5)
    with pytest.raises(Stop):
        fit(cfg, {"image": x}, labels, ["angry", "sad"], checkpoints=tmp_path, verbose=0, train_speakers=speakers,
            extra_callbacks=(StopAfterFirst(),))
    model, _, _, start = fit(cfg, {"image": x}, labels, ["angry", "sad"], checkpoints=tmp_path, verbose=0,
                             train_speakers=speakers)
    assert start == 1 and model.output_shape == (None, 2)
