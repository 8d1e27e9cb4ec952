"""The default recipe: a regularised softmax classifier (optionally one hidden layer) over openSMILE's
ComParE 2016 utterance functionals (6,373 per clip), each speaker standardised on its own statistics.

Why this and not a spectrogram CNN by default: public emotion corpora are small (EmoDB 454 clips of 10
speakers, RAVDESS 1,440 of 24), so a network that learns its features from 64x188 spectrograms overfits
the training speakers, while a large fixed set of prosodic, voice-quality and spectral functionals with a
linear read-out does not; per-speaker standardisation removes the voice and keeps the emotion. How it
compares with the papers' spectrogram models and the eGeMAPS + SVM baseline, cross-validated on real speech:
the results table of the README (figures live there only, measured on today's defaults).
"""
from __future__ import annotations

NAME = "functionals"
INPUT = "compare"
DEFAULTS = {
    "input_dropout_rate": 0.5,  # dropout on the 6,373 inputs: the main regulariser of a wide linear model
    "hidden_size": 0,           # 0 = linear read-out (softmax regression); > 0 = one Dense ReLU layer
    "dropout": True,
    "dropout_rate": 0.5,        # after the hidden layer, when there is one
    "l2": 0.001,
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 32,
    # the read-out's starting weights: zeros (a linear read-out's loss is convex, so no symmetry needs breaking;
    # a random start adds directions among the 6,373 inputs that a few hundred clips do not undo, and most of the
    # spread between seeds: docs/recipe.md) or glorot_uniform (Keras' default, this model's until 2026-12-05)
    "readout_init": "zeros",
}
CHOICES = {"readout_init": ("zeros", "glorot_uniform")}


def build(input_shape: tuple, n_classes: int, hp: dict, norm: tuple | None = None):
    import keras

    from pipeline.zoo import blocks

    inputs, x = blocks.model_input(INPUT, input_shape, norm)
    x = blocks.dropout(x, hp, rate=hp["input_dropout_rate"])
    if hp["hidden_size"]:
        x = blocks.dense_layers(x, hp, [hp["hidden_size"]])
    outputs = keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="emotion",
                                 kernel_initializer=hp["readout_init"], kernel_regularizer=blocks.regularizer(hp))(x)
    return keras.Model(inputs, outputs, name=NAME)
