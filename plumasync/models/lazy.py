"""Fields computed on first read: what a 10,000-entry page builds only for the values someone reads.

A model built from the wire is created with its cheap fields set and its costly ones (datetimes,
session ids) left empty; the wire values they come from were already checked, so computing them later
cannot fail.  The first read of an empty field computes it (with any field computed from the same
text) and stores it in its slot: each is computed once, and every later read is a plain slot read.

Nothing else changes: the class is the same attrs class, its constructor takes every field as before,
and equality, hashing, ``repr``, pickling, ``attrs.asdict``/``evolve`` and cattrs read fields through
``getattr``, which fills them.  An object built by its constructor has every field set and never
reaches this code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

__all__ = ["Lazy", "slot_setter"]


class Lazy:
    """Base of models with lazily computed fields.

    ``_lazy`` maps each lazy field to the function that fills it (it may fill others computed from the
    same text), from the eager fields or from ``_wire``, a private slot for the wire values no field
    keeps.  Fillers write with :func:`slot_setter` setters: the models are frozen.
    """

    __slots__ = ("_wire",)
    _lazy: ClassVar[Mapping[str, Callable[[Any], None]]] = {}
    _wire: Any

    if not TYPE_CHECKING:  # keep attribute typos visible to the type checker

        def __getattr__(self, name: str) -> Any:
            # Only reached when normal lookup failed: an empty slot.
            fill = type(self)._lazy.get(name)
            if fill is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            fill(self)
            return object.__getattribute__(self, name)


def slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The bound ``__set__`` of ``cls``'s slot ``name``: the cheapest way to fill a frozen slot."""
    setter: Callable[[Any, Any], None] = getattr(cls, name).__set__
    return setter
