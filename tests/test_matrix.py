"""The study: one case per network x technique x target (:func:`tinyhil.study.test_case`).

A project of your own holds the study the same way: this one import.
"""

from tinyhil.study import test_case  # noqa: F401 - the tinyhil study
