"""Paper A's best: Conv2D blocks 32-64-128-256, BiLSTM 128 over time, additive attention 128, dense head."""
from __future__ import annotations

NAME = "cnn_blstm_attention"
INPUT = "image"  # 128x128x3 in paper A
DEFAULTS = {
    "filters": [32, 64, 128, 256],  # Conv2D 3x3 ReLU L2 -> BatchNorm -> MaxPool2D -> Dropout, per entry
    "kernel_size": 3,
    "lstm_units": 128,  # per direction
    "attention_units": 128,
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
    x = blocks.lstm(hp["lstm_units"], return_sequences=True, bidirectional=True)(x)
    x = blocks.AttentionPooling(hp["attention_units"], name="attention")(x)
    x = blocks.dropout(x, hp)
    x = blocks.dense_layers(x, hp, hp["dense_units"])
    return keras.Model(inputs, blocks.classifier(x, n_classes), name=NAME)
