"""Paper A comparison: ResNet50 (ImageNet, no top, first 15 layers frozen) + vgg19's head."""
from __future__ import annotations

from pipeline.zoo import vgg19

NAME = "resnet50"
INPUT = "image"  # 0..1, 1 or 3 channels; converted inside the model to what ResNet50 expects
APPLICATION = "ResNet50"  # keras.applications.ResNet50
PREPROCESS = "caffe"  # ImageNetPreprocess mode (keras.applications preprocess_input equivalent)
WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
# The same head and training protocol as vgg19 (SPEC) (weights: imagenet | null | path to WEIGHTS_FILE).
CHOICES = vgg19.CHOICES
DEFAULTS = dict(vgg19.DEFAULTS)


def build(input_shape: tuple, n_classes: int, hp: dict, norm: tuple | None = None):
    from pipeline.zoo import blocks

    return blocks.pretrained_model(NAME, APPLICATION, PREPROCESS, WEIGHTS_FILE, WEIGHTS_URL,
                                   input_shape, n_classes, hp)
