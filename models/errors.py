"""Errors a user can act on: each names the problem and the fix."""


class TinyhilError(Exception):
    """Base class for errors that tinyhil reports to the user as a clear message."""


class UnknownNameError(TinyhilError, KeyError):
    """A registry lookup (network, technique, dataset, board, profile) found nothing."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(self.known)}")

    def __str__(self) -> str:
        return self.args[0]


class DatasetError(TinyhilError):
    """A dataset path, file or array is missing or has the wrong layout."""


class ModelFileError(TinyhilError):
    """A .tflite file is missing, truncated or not a TFLite flatbuffer."""
