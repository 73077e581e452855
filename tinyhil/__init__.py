"""tinyhil: hardware-in-the-loop tests for compressed TinyML models (pytest plugins).

The repository's folders are tinyhil's sub-packages: ``models/`` is :mod:`tinyhil.models`,
``plugins/`` is :mod:`tinyhil.plugins`, ``firmware/`` (the ESP-IDF project, data only)
ships as ``tinyhil/firmware``. A wheel or an editable install maps them so
(``pyproject.toml``: ``package-dir``); in a source checkout without an install, this
package finds them beside it, so ``python -m pytest`` in a fresh clone imports the
clone's own code.

Importing this package imports nothing else: a pytest run that does not ask for tinyhil
pays for its option declarations only (:mod:`tinyhil.plugins.options`).
"""

from pathlib import Path as _Path

__version__ = "0.2.0"

_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "models" / "__init__.py").is_file():
    # a source checkout: tinyhil.models is <checkout>/models, and so on
    __path__.append(str(_checkout))  # noqa: F821 - a package's __path__
del _checkout
