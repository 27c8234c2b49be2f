"""Name -> factory registries, filled by decorators and by Python entry points.

Third-party packages register without touching this code by declaring an entry
point in the group ``mike_sdk.strategies`` or ``mike_sdk.backends``::

    [project.entry-points."mike_sdk.strategies"]
    my-strategy = "my_package.strategies:MyStrategy"

Entry points are loaded one at a time, when their name is asked for: :meth:`Registry.names`
imports no plugin (:meth:`Registry.entries`, for listings, imports each), and a broken
plugin fails only the runs that use it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from mike_sdk.errors import ConfigError, PluginError, closest_first, one_line, unknown_name

T = TypeVar("T")


def _distribution(ep: EntryPoint) -> str | None:
    """``name version`` of the package that declares ``ep``, where known."""
    dist = getattr(ep, "dist", None)  # absent on entry points built by hand
    if dist is None:
        return None
    try:
        name, version = dist.name, dist.version
    except Exception:  # unreadable METADATA: the entry point alone still says enough
        return None
    if not name:
        return None
    return f"{name} {version}" if version else str(name)


class Registry(Generic[T]):
    """Factories by name; built-ins register with :meth:`register`, plugins via entry points."""

    def __init__(self, kind: str, group: str, builtins: str) -> None:
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._builtins_loaded = False
        self._factories: dict[str, Callable[..., T]] = {}
        self._plugins: dict[str, EntryPoint] | None = None
        self._broken: dict[str, PluginError] = {}

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

    def _load_builtins(self) -> None:
        if not self._builtins_loaded:
            self._builtins_loaded = True
            # Importing the built-in module runs its @register decorators.
            __import__(self._builtins)

    def _entry_points(self) -> dict[str, EntryPoint]:
        """Declared plugins by name, found once and not imported."""
        if self._plugins is None:
            found: dict[str, EntryPoint] = {}
            for ep in entry_points(group=self.group):
                found.setdefault(ep.name, ep)  # the first installed copy wins, as before
            self._plugins = found
        return self._plugins

    def _load_plugin(self, name: str, ep: EntryPoint) -> Callable[..., T]:
        if name in self._broken:
            raise self._broken[name]
        try:
            factory = ep.load()
        except Exception as exc:  # any failure inside third-party code: report, don't crash
            error = self._plugin_error(name, ep, one_line(exc))
        else:
            if callable(factory):
                # The plugin's module may have registered it already (same object).
                self._factories.setdefault(name, factory)
                return self._factories[name]
            error = self._plugin_error(name, ep, f"{ep.value} is not callable "
                                                 f"({type(factory).__name__})")
        self._broken[name] = error
        raise error

    def _plugin_error(self, name: str, ep: EntryPoint, reason: str) -> PluginError:
        dist = _distribution(ep)
        package = dist.split()[0] if dist else None
        fix = (f"Reinstall it (pip install --force-reinstall {package}) or uninstall it "
               f"(pip uninstall {package})." if package else
               "Reinstall or uninstall the package that declares it.")
        source = f", from distribution {dist}" if dist else ""
        return PluginError(f"The {self.kind} plugin {name!r} (entry point {ep.value} in group "
                           f"{self.group}{source}) failed to load: {reason}. {fix}",
                           name=name, reason=reason)

    def names(self) -> list[str]:
        """All registered and declared names, sorted; imports no plugin."""
        self._load_builtins()
        return sorted(set(self._factories) | set(self._entry_points()))

    def get(self, name: str) -> Callable[..., T]:
        """The factory for ``name``, importing only its plugin if it comes from one.

        An unknown name lists the valid ones, closest first; a plugin that fails to
        import raises :class:`~mike_sdk.errors.PluginError` naming its distribution.
        """
        self._load_builtins()
        factory = self._factories.get(name)
        if factory is not None:
            return factory
        ep = self._entry_points().get(name)
        if ep is None:
            raise unknown_name(self.kind, name, self.names())
        return self._load_plugin(name, ep)

    def entries(self) -> Iterator[tuple[str, Callable[..., T] | PluginError]]:
        """Every name with its factory, or the error its plugin raised on loading.

        For listings, which should show a broken plugin rather than stop at it.
        """
        for name in self.names():
            try:
                yield name, self.get(name)
            except PluginError as exc:
                yield name, exc

    def create(self, name: str, **options: object) -> T:
        """Build the thing registered as ``name`` with ``options``; an option it does not
        take is a :class:`ConfigError` that lists the ones it does."""
        factory = self.get(name)
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):  # no signature to read (a C callable): just call
            return factory(**options)
        try:
            signature.bind(**options)
        except TypeError as exc:
            takes = [p.name for p in signature.parameters.values()
                     if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
            unknown = sorted(set(options) - set(takes))
            hint = (f" Did you mean {closest_first(unknown[0], takes)[0]!r}?"
                    if unknown and takes else "")
            raise ConfigError(f"The {self.kind} {name!r} does not take these options: {exc}."
                              f"{hint} Its options: {', '.join(takes) or 'none'}.") from None
        return factory(**options)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()
