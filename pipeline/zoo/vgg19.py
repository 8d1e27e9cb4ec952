"""Paper A: VGG19 (ImageNet, no top, first 15 layers frozen) + Dense 128 / 64 head; 76 % in paper A."""
from __future__ import annotations

NAME = "vgg19"
INPUT = "image"  # 0..1, 1 or 3 channels; converted inside the model to what VGG19 expects
APPLICATION = "VGG19"  # keras.applications.VGG19
PREPROCESS = "caffe"  # ImageNetPreprocess mode (keras.applications preprocess_input equivalent)
WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
CHOICES = {"pooling": ("flatten", "avg")}
DEFAULTS = {
    "weights": "imagenet",  # imagenet | null (from scratch) | path to vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5
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
