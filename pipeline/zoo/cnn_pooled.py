"""A spectrogram CNN for small corpora: Conv-BN-ReLU-MaxPool blocks, then the feature map pooled into a softmax
read-out: averaged over time with the frequency bands kept (the default), over the whole map, or by additive
attention over time after the mean over frequency. Pooling, not flattening: a flattened map ties each weight to a
position in time and frequency, which on ten speakers learns the speakers. Pooling over time only keeps where in
frequency a pattern sits (pitch, formants, spectral balance: where emotion shows) and drops when in the clip it
came (which says nothing about the emotion). Trained with the spectrogram recipe (speaker-normalised native
log-mel, SpecAugment, mixup, AdamW with cosine decay: docs/recipe.md); the pooling was chosen on validation
speakers (time_avg over the global average, which was chosen over attention)."""
from __future__ import annotations

NAME = "cnn_pooled"
INPUT = "image"
CHOICES = {"pooling": ("time_avg", "avg", "attention")}
DEFAULTS = {
    "filters": [16, 32, 64, 128],  # one Conv2D 3x3 -> BatchNorm -> ReLU -> MaxPool2D block per entry
    "kernel_size": 3,
    "time_pool": 2,  # the input averaged over pairs of frames first (20-ms steps: every convolution half the work)
    "pooling": "time_avg",  # time_avg (over time, the bands kept) | avg (global average) | attention (additive, over time)
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
    if int(hp.get("time_pool", 1)) > 1:  # emotion lives in syllables (100s of ms), not 10-ms steps
        x = layers.AveragePooling2D(pool_size=(1, int(hp["time_pool"])), padding="same")(x)
    for filters in blocks.as_list(hp["filters"]):
        x = layers.Conv2D(filters, hp["kernel_size"], padding="same", use_bias=False,
                          kernel_regularizer=blocks.regularizer(hp))(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    if hp["pooling"] == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif hp["pooling"] == "time_avg":  # where in frequency a pattern sits (pitch, formants, spectral tilt) kept
        x = blocks.time_mean(x)
    else:
        x = blocks.frequency_mean(x)
        x = blocks.AttentionPooling(hp["attention_units"], name="attention")(x)
    x = blocks.dropout(x, hp)
    return keras.Model(inputs, blocks.classifier(x, n_classes), name=NAME)
