"""Paper B: MLP on utterance-level features (mean MFCC, chroma, mel)."""
from __future__ import annotations

NAME = "mlp"
INPUT = "utterance"
DEFAULTS = {
    "dense_units": [300],  # Dense ReLU (L2) -> Dropout per entry (paper B: one hidden layer of 300)
    "dropout": True,
    "dropout_rate": 0.2,
    "l2": 0.01,
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 256,
}


def build(input_shape: tuple, n_classes: int, hp: dict, norm: tuple | None = None):
    import keras

    from pipeline.zoo import blocks

    inputs, x = blocks.model_input(INPUT, input_shape, norm)
    x = blocks.dense_layers(x, hp, hp["dense_units"])
    return keras.Model(inputs, blocks.classifier(x, n_classes), name=NAME)
