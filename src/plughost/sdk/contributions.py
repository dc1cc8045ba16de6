"""The base of the `Plugin` mixins that each declare one part of the descriptor."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from plughost.sdk.descriptor import Descriptor

T = TypeVar("T")


class DescriptorContribution:
    """What every decorator mixin of `Plugin` shares: its declarations and the descriptor chain."""

    __dict__: dict[str, Any]

    def _declared(self, key: str, factory: Callable[[], T]) -> T:
        """This plugin's declarations stored under `key`, made by `factory` on first use (mixins have
        no `__init__` of their own)."""
        value = self.__dict__.get(key)
        if value is None:
            value = self.__dict__[key] = factory()
        return cast(T, value)

    def _extend_descriptor(self, descriptor: Descriptor) -> Descriptor:
        """Each mixin adds its part after `super()`'s; this end of the chain adds nothing."""
        return descriptor


__all__ = ["DescriptorContribution"]
