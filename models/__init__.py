"""What one tinyhil case builds: networks, datasets, training, compression, export, inspection.

Importing this package selects Keras 2 (``tf_keras``) for TensorFlow: its LSTM converts to
TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM, which TFLM runs; Keras 3's LSTM converts to
WHILE + variable ops, and its int8 conversion fails.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# A TF_CPP_MIN_LOG_LEVEL of the user's asks for TensorFlow's logs: then they are kept (and in
# the training processes, which see this process's value and are told by QUIET_TENSORFLOW).
QUIET_TENSORFLOW = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
if QUIET_TENSORFLOW:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # warnings and notices (oneDNN) off; errors stay
    from tinyhil.models.cstderr import quiet_tensorflow_start

    quiet_tensorflow_start()  # and the start-up lines no log level reaches (absl, CUDA probes)

__all__: list[str] = []
