"""Papers A and D: stacked LSTMs over the spectrogram's time frames; the 'no CNN' ablation."""
from __future__ import annotations

NAME = "lstm"
INPUT = "image"
CHOICES = {"pooling": ("last", "avg")}
DEFAULTS = {
    "lstm_units": [64, 64],  # one LSTM layer per entry (paper A's reference: two of 64)
    "pooling": "last",  # last: the last layer's final state (the papers') | avg: the mean of its outputs over time
    "dense_units": 64,
    "dropout": True,
    "dropout_rate": 0.3,
    "l2": 0.01,  # on the dense layer
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 32,
}


def build(input_shape: tuple, n_classes: int, hp: dict, norm: tuple | None = None):
    """Image (height=mel bins, width=time, channels): one step per time column, height*channels features."""
    import keras

    from pipeline.zoo import blocks

    inputs, x = blocks.model_input(INPUT, input_shape, norm)
    x = blocks.to_sequence(x)
    units = blocks.as_list(hp["lstm_units"])
    for i, n in enumerate(units):
        last = i == len(units) - 1
        x = blocks.lstm(n, return_sequences=not last or hp["pooling"] == "avg")(x)
        x = blocks.dropout(x, hp)
    x = blocks.time_pooling(x, hp["pooling"])
    x = blocks.dense_layers(x, hp, hp["dense_units"])
    return keras.Model(inputs, blocks.classifier(x, n_classes), name=NAME)
