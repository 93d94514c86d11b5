"""Typed registries: one per plugin kind, filled by the plugins' ``register`` callbacks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from llbench.errors import DuplicateNameError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to specs and remembers which plugin registered each one."""

    def __init__(self, kind: str, spec_type: type[T]):
        self.kind = kind
        self.spec_type = spec_type
        self._specs: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def add(self, spec: T, origin: str) -> None:
        if not isinstance(spec, self.spec_type):
            raise TypeError(
                f"plugin {origin!r} registered {spec!r} as a {self.kind}; "
                f"expected a {self.spec_type.__name__}"
            )
        name = spec.name  # type: ignore[attr-defined]
        if name in self._specs:
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered twice: by {self._origins[name]!r} and by {origin!r}"
            )
        self._specs[name] = spec
        self._origins[name] = origin

    def get(self, name: str) -> T:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._specs) from None

    def origin(self, name: str) -> str:
        self.get(name)
        return self._origins[name]

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[T]:
        return iter(self._specs[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._specs)

    def clear(self) -> None:
        self._specs.clear()
        self._origins.clear()
