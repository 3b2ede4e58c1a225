# SPDX-License-Identifier: GPL-2.0
"""The message machinery of the agent protocol: @message (a dataclass without `dataclasses`), to/from the wire."""

# The agent runs this in the guest (`python3 -S`, stdlib only, start-up kept short: `dataclasses` would import `re`
# and `inspect`); the host imports the same file (harness/machine/messages.py). A class decorated with @message is
# declared as a keyword-only dataclass (annotations, defaults, field(default_factory=...)) and gets __init__, __eq__
# and __repr__; mypy reads it as one (dataclass_transform, in the TYPE_CHECKING branch). The messages: messages.py.
#
# A field without a default is required: from_dict() of a dict without it raises ProtocolError naming the op and
# the field (a reply missing `retval` is an error, never a silent 0). A field whose default is None may be absent
# on the wire; to_dict() leaves it out while it is None. Keys no field names are kept in a field named `extra`
# when the class has one (the trigger actions' own fields). Nested messages are named in NESTED.

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # mypy: the classes are dataclasses; Request[R] names its reply class
    from dataclasses import field
    from typing import Any, ClassVar, Generic, TypeVar, dataclass_transform

    T = TypeVar("T")
    R = TypeVar("R")

    @dataclass_transform(kw_only_default=True, field_specifiers=(field,))
    def message(cls: T) -> T: ...

    class RequestBase(Generic[R]):
        pass
else:
    _NO_DEFAULT = object()

    class _Field:
        def __init__(self, default_factory):
            self.default_factory = default_factory

    def field(*, default_factory):
        return _Field(default_factory)

    def message(cls):
        """A small dataclass: __init__ (keyword or positional, in declaration order), __eq__, __repr__."""
        names, defaults = _declared_fields(cls)
        cls._FIELDS = tuple(names)
        cls._DEFAULTS = defaults
        cls.__init__ = _make_init(cls, names, defaults)
        cls.__eq__, cls.__repr__, cls.__hash__ = _make_eq(names), _make_repr(cls, names), None
        for name, value in defaults.items():  # as dataclasses: no class attribute for a factory default
            if isinstance(value, _Field):
                delattr(cls, name)
        return cls

    def _declared_fields(cls):
        """The fields of `cls` and its bases, base first, in declaration order (upper-case names are class
        constants), and the defaults of those that have one."""
        names: list[str] = []
        defaults: dict = {}
        for klass in reversed(cls.__mro__):
            for name in klass.__dict__.get("__annotations__", {}):
                if name.isupper() or name in names:
                    continue
                names.append(name)
                value = klass.__dict__.get(name, _NO_DEFAULT)
                if value is not _NO_DEFAULT:
                    defaults[name] = value
        return names, defaults

    def _make_init(cls, names, defaults):
        def __init__(self, *args, **kwargs):
            if len(args) > len(names):
                raise TypeError(f"{cls.__name__} takes at most {len(names)} positional arguments")
            values = dict(zip(names, args, strict=False))
            for key, value in kwargs.items():
                if key not in names or key in values:
                    raise TypeError(f"{cls.__name__}: unexpected or repeated argument {key!r}")
                values[key] = value
            for name in names:
                if name not in values:
                    if name not in defaults:
                        raise TypeError(f"{cls.__name__} needs argument {name!r}")
                    default = defaults[name]
                    values[name] = default.default_factory() if isinstance(default, _Field) else default
                object.__setattr__(self, name, values[name])

        return __init__

    def _make_eq(names):
        def __eq__(self, other):
            if other.__class__ is not self.__class__:
                return NotImplemented
            return all(getattr(self, n) == getattr(other, n) for n in names)

        return __eq__

    def _make_repr(cls, names):
        def __repr__(self):
            return f"{cls.__name__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"

        return __repr__

    class RequestBase:
        def __class_getitem__(cls, item):
            return cls


class ProtocolError(ValueError):
    """A message that does not have the shape its op's class declares (a missing required field)."""


class Message:
    """What requests and replies share: the conversion to and from the JSON object on the wire."""

    OP = ""
    NESTED: dict = {}  # field name -> the Message class its value is (a dict on the wire)
    if TYPE_CHECKING:
        _FIELDS: ClassVar[tuple[str, ...]]
        _DEFAULTS: ClassVar[dict[str, Any]]

    def to_dict(self) -> dict:
        out: dict = {}
        for name in self._FIELDS:
            value = getattr(self, name)
            if name == "extra":
                out.update(value)
            elif value is None and self._DEFAULTS.get(name, 0) is None:
                continue
            elif name in self.NESTED and value is not None:
                out[name] = value.to_dict()
            else:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict):
        if not isinstance(data, dict):
            raise ProtocolError(f"{cls._what()}: expected a JSON object, got {type(data).__name__}")
        values: dict = {}
        for name in cls._FIELDS:
            if name == "extra":
                continue
            if name in data:
                value = data[name]
                nested = cls.NESTED.get(name)
                values[name] = nested.from_dict(value) if nested is not None and value is not None else value
            elif name not in cls._DEFAULTS:
                raise ProtocolError(f"{cls._what()} has no '{name}' field: {_brief(data)}")
        if "extra" in cls._FIELDS:
            values["extra"] = {k: v for k, v in data.items() if k not in cls._FIELDS}
        return cls(**values)

    @classmethod
    def _what(cls) -> str:
        kind = "request" if issubclass(cls, RequestBase) else "reply"
        return f"the agent's {cls.OP or cls.__name__} {kind}"


def _brief(data: dict) -> str:
    text = repr(data)
    return text if len(text) <= 400 else text[:400] + "..."


