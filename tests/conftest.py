"""The framework's own tests drive pytest runs with ``pytester``; a study run never loads it."""

pytest_plugins = ["pytester"]
