"""Paper A: Conv2D blocks, then an LSTM over the time axis of the feature map, dense head."""
from __future__ import annotations

NAME = "cnn_lstm"
INPUT = "image"
CHOICES = {"pooling": ("last", "avg")}
DEFAULTS = {
    "filters": [32, 64, 128, 256],
    "kernel_size": 3,
    "lstm_units": 128,
    "pooling": "last",  # last: the LSTM's final state (the papers') | avg: the mean of its outputs over time
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

    from pipeline.zoo import blocks

    inputs, x = blocks.model_input(INPUT, input_shape, norm)
    x = blocks.conv2d_blocks(x, hp)
    x = blocks.to_sequence(x)
    x = blocks.lstm(hp["lstm_units"], return_sequences=hp["pooling"] == "avg")(x)
    x = blocks.dropout(x, hp)
    x = blocks.time_pooling(x, hp["pooling"])
    x = blocks.dense_layers(x, hp, hp["dense_units"])
    return keras.Model(inputs, blocks.classifier(x, n_classes), name=NAME)
