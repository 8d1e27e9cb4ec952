"""Paper A baseline: Conv2D blocks (as cnn_blstm_attention) then a dense head; the 'no LSTM' ablation."""
from __future__ import annotations

NAME = "cnn"
INPUT = "image"
CHOICES = {"pooling": ("flatten", "avg")}
DEFAULTS = {
    "filters": [32, 64, 128, 256],  # one Conv2D 3x3 -> BN -> MaxPool2D -> Dropout block per entry
    "kernel_size": 3,
    "pooling": "flatten",  # flatten | avg (GlobalAveragePooling2D) between the blocks and the head
    "dense_units": 128,
    "dropout": True,
    "dropout_rate": 0.3,
    "l2": 0.01,
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 32,
}


def build(input_shape: tuple, n_classes: int, hp: dict, norm: tuple | None = None):
    import keras
    from keras import layers

    from pipeline.zoo import blocks

    inputs, x = blocks.model_input(INPUT, input_shape, norm)
    x = blocks.conv2d_blocks(x, hp)
    x = layers.GlobalAveragePooling2D()(x) if hp["pooling"] == "avg" else layers.Flatten()(x)
    x = blocks.dense_layers(x, hp, hp["dense_units"])
    return keras.Model(inputs, blocks.classifier(x, n_classes), name=NAME)
