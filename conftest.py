"""Root conftest: registers tinyhil's plugins; no logic of its own."""

pytest_plugins = [
    "plugins.matrix",
    "plugins.report",
    "plugins.verdicts",
    "plugins.regression",
    "plugins.targets.host",
    "plugins.hil",
    "pytester",
]
