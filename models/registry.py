"""A name -> object registry that refuses duplicates and lists known names on a miss."""

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from tinyhil.models.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Holds named parts of the pipeline (networks, techniques, datasets, boards).

    Args:
        kind: What the registry holds, used in error messages ("network", "technique").
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Registers ``item`` under ``name``.

        Raises:
            ValueError: if ``name`` is already registered.
        """
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def deco(item: T) -> T:
            return self.add(name, item)

        return deco

    def get(self, name: str) -> T:
        """Returns the item named ``name``.

        Raises:
            UnknownNameError: naming the known entries.
        """
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, list(self._items)) from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)
