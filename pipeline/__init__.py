"""Speech emotion recognition pipeline: corpora -> spectrogram shards -> Keras models, driven by DVC.

Data stages (ingest .. render) and predict's audio path never import TensorFlow or Keras.
"""

TARGET_LABELS = ("angry", "happy", "sad", "neutral", "fearful", "disgust", "surprise")

__all__ = ["TARGET_LABELS"]
