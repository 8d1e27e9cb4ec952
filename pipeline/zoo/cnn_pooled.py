"""A spectrogram CNN for small corpora: Conv-BN-ReLU-MaxPool blocks, then the feature map pooled (global average,
or additive attention over time after the mean over frequency) into a softmax read-out. Pooling, not flattening:
a flattened map ties each weight to a position in time and frequency, which on ten speakers learns the
speakers; pooled features are position-free. Trained with the spectrogram recipe (speaker-normalised native
log-mel, SpecAugment, mixup, AdamW with cosine decay: docs/recipe.md); the pooling was chosen on validation
speakers (global average over attention)."""
from __future__ import annotations

NAME = "cnn_pooled"
INPUT = "image"
CHOICES = {"pooling": ("avg", "attention")}
DEFAULTS = {
    "filters": [16, 32, 64, 128],  # one Conv2D 3x3 -> BatchNorm -> ReLU -> MaxPool2D block per entry
    "kernel_size": 3,
    "pooling": "avg",  # avg (global average) | attention (additive, over time)
    "attention_units": 64,
    "dropout": True,
    "dropout_rate": 0.3,
    "l2": 0.0,  # the decoupled weight decay below regularises instead
    "optimizer": "adam",
    "learning_rate": 0.001,
    "weight_decay": 0.001,  # AdamW's decoupled weight decay (0 = Adam)
    "batch_size": 32,
}


def build(input_shape: tuple, n_classes: int, hp: dict, norm: tuple | None = None):
    import keras
    from keras import layers

    from pipeline.zoo import blocks

    inputs, x = blocks.model_input(INPUT, input_shape, norm)
    for filters in blocks.as_list(hp["filters"]):
        x = layers.Conv2D(filters, hp["kernel_size"], padding="same", use_bias=False,
                          kernel_regularizer=blocks.regularizer(hp))(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    if hp["pooling"] == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    else:
        x = blocks.frequency_mean(x)
        x = blocks.AttentionPooling(hp["attention_units"], name="attention")(x)
    x = blocks.dropout(x, hp)
    return keras.Model(inputs, blocks.classifier(x, n_classes), name=NAME)
