"""How a dataset's windows are split into training and test: the names.

Here, not under :mod:`tinyhil.models`, because the option table reads them in every pytest run
of an environment where tinyhil is installed, and importing :mod:`tinyhil.models` selects
tf_keras for TensorFlow (``TF_USE_LEGACY_KERAS``): a run that did not ask for tinyhil must not.
"""

SPLITS = ("paper", "subjects")  # pooled 75/25 stratified and seeded | the dataset's official subject split
