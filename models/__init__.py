"""What one tinyhil case builds: networks, datasets, training, compression, export, inspection.

Importing this package selects Keras 2 (``tf_keras``) for TensorFlow: its LSTM converts to
TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM, which TFLM runs; Keras 3's LSTM converts to
WHILE + variable ops, and its int8 conversion fails.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__: list[str] = []
