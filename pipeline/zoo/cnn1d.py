"""Paper C: 1-D CNN on a feature vector (flattened MFCC + zero-crossing rate + RMS energy)."""
from __future__ import annotations

NAME = "cnn1d"
INPUT = "vector"
DEFAULTS = {
    # Conv1D (ReLU, L2) -> BatchNorm -> MaxPool1D per entry; Dropout after the second block
    "filters": [256, 256, 128],
    "kernel_sizes": [5, 5, 3],
    "pool_size": 5,
    "pool_strides": 2,
    "dense_units": 512,  # Dense ReLU -> BatchNorm -> softmax
    "dropout": True,
    "dropout_rate": 0.2,
    "l2": 0.01,
    "optimizer": "rmsprop",
    "learning_rate": 0.001,
    "batch_size": 64,
}


def build(input_shape: tuple, n_classes: int, hp: dict, norm: tuple | None = None):
    import keras
    from keras import layers

    from pipeline.zoo import blocks

    blocks.check_lengths(NAME, hp, "filters", "kernel_sizes")
    inputs, x = blocks.model_input(INPUT, input_shape, norm)
    x = layers.Reshape((int(input_shape[0]), 1))(x)
    for i, (filters, kernel) in enumerate(zip(blocks.as_list(hp["filters"]), blocks.as_list(hp["kernel_sizes"]))):
        x = layers.Conv1D(filters, kernel, padding="same", activation="relu",
                          kernel_regularizer=blocks.regularizer(hp))(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling1D(hp["pool_size"], strides=hp["pool_strides"], padding="same")(x)
        if i == 1:
            x = blocks.dropout(x, hp)
    x = layers.Flatten()(x)
    x = layers.Dense(hp["dense_units"], activation="relu", kernel_regularizer=blocks.regularizer(hp))(x)
    x = layers.BatchNormalization()(x)
    return keras.Model(inputs, blocks.classifier(x, n_classes), name=NAME)
