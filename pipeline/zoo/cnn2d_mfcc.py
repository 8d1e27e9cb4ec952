"""Paper C: 2-D CNN on the MFCC matrix (frames x coefficients x 1)."""
from __future__ import annotations

NAME = "cnn2d_mfcc"
INPUT = "mfcc"
DEFAULTS = {
    # Conv2D (ReLU, L2) -> BatchNorm -> AvgPool2D for all but the last entry, then Dropout,
    # then the last Conv2D -> MaxPool2D; padding "same" throughout so small inputs work
    "filters": [256, 128, 128, 64],
    "kernel_size": 6,
    "pool_size": 4,
    "pool_strides": 2,
    "dense_units": 256,
    "dropout": True,
    "dropout_rate": 0.2,
    "l2": 0.01,
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 32,
}


def build(input_shape: tuple, n_classes: int, hp: dict, norm: tuple | None = None):
    import keras
    from keras import layers

    from pipeline.zoo import blocks

    filters = blocks.as_list(hp["filters"])
    if len(filters) < 2:
        from pipeline.errors import ParamsError

        raise ParamsError(f"models.{NAME}.filters", f"needs at least 2 entries, got {filters}")
    pool = dict(pool_size=hp["pool_size"], strides=hp["pool_strides"], padding="same")
    conv = dict(kernel_size=hp["kernel_size"], padding="same", activation="relu")
    inputs, x = blocks.model_input(INPUT, input_shape, norm)
    for n in filters[:-1]:
        x = layers.Conv2D(n, kernel_regularizer=blocks.regularizer(hp), **conv)(x)
        x = layers.BatchNormalization()(x)
        x = layers.AveragePooling2D(**pool)(x)
    x = blocks.dropout(x, hp)
    x = layers.Conv2D(filters[-1], kernel_regularizer=blocks.regularizer(hp), **conv)(x)
    x = layers.MaxPooling2D(**pool)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(hp["dense_units"], activation="relu", kernel_regularizer=blocks.regularizer(hp))(x)
    return keras.Model(inputs, blocks.classifier(x, n_classes), name=NAME)
