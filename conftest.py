"""Root conftest: registers tinyhil's plugins; no logic of its own."""

pytest_plugins = [
    "plugins.options",
    "plugins.study",
    "plugins.reporting",
    "plugins.progress",
    "plugins.verdicts",
    "plugins.regression",
    "plugins.hil",
    "pytester",
]
