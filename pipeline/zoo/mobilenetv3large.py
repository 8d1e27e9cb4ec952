"""Paper A comparison: MobileNetV3Large (ImageNet, no top, first 15 layers frozen) + vgg19's head."""
from __future__ import annotations

from pipeline.zoo import vgg19

NAME = "mobilenetv3large"
INPUT = "image"  # 0..1, 1 or 3 channels; converted inside the model to what MobileNetV3Large expects
APPLICATION = "MobileNetV3Large"  # keras.applications.MobileNetV3Large
PREPROCESS = "tf"  # ImageNetPreprocess mode (keras.applications preprocess_input equivalent)
WEIGHTS_FILE = "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
# The same head and training protocol as vgg19 (SPEC) (weights: imagenet | null | path to WEIGHTS_FILE).
CHOICES = vgg19.CHOICES
DEFAULTS = dict(vgg19.DEFAULTS)


def build(input_shape: tuple, n_classes: int, hp: dict, norm: tuple | None = None):
    from pipeline.zoo import blocks

    return blocks.pretrained_model(NAME, APPLICATION, PREPROCESS, WEIGHTS_FILE, WEIGHTS_URL,
                                   input_shape, n_classes, hp)
