"""Root conftest: asks for tinyhil's plugins (:mod:`tinyhil.study`); no logic of its own."""

pytest_plugins = ["tinyhil.study"]
