"""Paper D: DenseNet121 (ImageNet, no top, first 15 layers frozen) + vgg19's head."""
from __future__ import annotations

NAME = "densenet121"
INPUT = "image"  # 0..1, 1 or 3 channels; converted inside the model to what DenseNet121 expects
APPLICATION = "DenseNet121"  # keras.applications.DenseNet121
PREPROCESS = "torch"  # ImageNetPreprocess mode (keras.applications preprocess_input equivalent)
WEIGHTS_FILE = "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/densenet/"
CHOICES = {"pooling": ("flatten", "avg")}
DEFAULTS = {
    "weights": "imagenet",  # imagenet | null (from scratch) | path to densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5
    "frozen_layers": 15,  # first layers of the backbone frozen (only when weights are loaded)
    "pooling": "flatten",  # flatten | avg: backbone feature map -> head
    "dense_units": [128, 64],  # Dense ReLU L2 -> BatchNorm -> Dropout, per entry
    "dropout": True,
    "dropout_rate": 0.6,
    "l2": 0.01,
    "optimizer": "adam",
    "learning_rate": 5.0e-5,
    "batch_size": 16,
}


def build(input_shape: tuple, n_classes: int, hp: dict, norm: tuple | None = None):
    from pipeline.zoo import blocks

    return blocks.pretrained_model(NAME, APPLICATION, PREPROCESS, WEIGHTS_FILE, WEIGHTS_URL,
                                   input_shape, n_classes, hp)
