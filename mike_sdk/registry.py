"""Name -> factory registries, filled by decorators and by Python entry points.

Third-party packages register without touching this code by declaring an entry
point in the group ``mike_sdk.strategies`` or ``mike_sdk.backends``::

    [project.entry-points."mike_sdk.strategies"]
    my-strategy = "my_package.strategies:MyStrategy"
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import ConfigError, unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Factories by name; built-ins register with :meth:`register`, plugins via entry points."""

    def __init__(self, kind: str, group: str, builtins: str) -> None:
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._factories: dict[str, Callable[..., T]] = {}
        self._entry_points_loaded = False

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers a factory (usually a class) under ``name``.

        >>> registry: Registry[object] = Registry("widget", "none", "builtins")
        >>> @registry.register("plain")
        ... class Plain: ...
        """

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            existing = self._factories.get(name)
            if existing is not None and existing is not factory:
                raise ConfigError(f"A {self.kind} named {name!r} is already registered "
                                  f"({existing!r}); pick another name.")
            self._factories[name] = factory
            return factory

        return decorate

    def _load(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        # Importing the built-in module runs its @register decorators.
        __import__(self._builtins)
        for ep in entry_points(group=self.group):
            if ep.name not in self._factories:
                self._factories[ep.name] = ep.load()

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._load()
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        """The factory for ``name``; an unknown name lists the valid ones, closest first."""
        self._load()
        try:
            return self._factories[name]
        except KeyError:
            raise unknown_name(self.kind, name, self._factories) from None

    def create(self, name: str, **options: object) -> T:
        """Build the thing registered as ``name`` with ``options``."""
        return self.get(name)(**options)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._factories
