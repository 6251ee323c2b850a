"""A `ServiceSpec` as JSON data, for the release records the agent stores.

`spec_to_json` gives plain JSON values (objects, arrays, strings, numbers, booleans, null),
and `spec_from_json` takes them back to an equal spec. Equal specs give the same text with
`json.dumps(data, sort_keys=True)`, so two specs can be compared as text. A record outlives
the version that wrote it: keys written by a later version are ignored, and keys an earlier
one did not write take the spec's defaults.

The form follows the dataclasses' annotations, so a new spec field needs nothing here unless
its type is new, and then importing this module fails until it is taught the type:

    tuple[str, ...]     an array of strings
    Mapping[str, str]   an object (`env`; read back as a read-only mapping)
    signal.Signals      its name, "SIGTERM" (signal numbers differ between platforms)
    CheckKind           its value, "http" (a StrEnum is its value, any other Enum its name)
    CheckSpec           an object of its own fields, by the same rules
    X | None            null, or the form of X
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from infraveil.core.spec import ServiceSpec

_Encode = Callable[[Any], Any]
_Decode = Callable[[Any, str], Any]
"""Takes the JSON value and where it is ("ready.port"), for the message of a ValueError."""


def spec_to_json(spec: ServiceSpec) -> dict[str, Any]:
    """Every field of `spec` as plain JSON values, keyed by field name."""
    encoded: dict[str, Any] = _SPEC.encode(spec)
    return encoded


def spec_from_json(data: Mapping[str, Any]) -> ServiceSpec:
    """The spec `data` (from `spec_to_json`, of this version or another) describes.

    Raises ValueError, naming the key, when a value has the wrong form or a field without a
    default (name, command, cwd) is missing: the record is damaged, not just old or new.
    """
    spec: ServiceSpec = _SPEC.decode(data, "")
    return spec


class _Record:
    """The codec of a frozen dataclass: an object with one key per field."""

    def __init__(self, cls: type[Any]) -> None:
        self.cls = cls
        hints = typing.get_type_hints(cls)
        self.fields = [(f, *_codec(hints[f.name])) for f in dataclasses.fields(cls) if f.init]

    def encode(self, value: Any) -> dict[str, Any]:
        return {f.name: encode(getattr(value, f.name)) for f, encode, _ in self.fields}

    def decode(self, data: Any, where: str) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where or 'the spec'}: expected an object, got {_kind(data)}")
        values: dict[str, Any] = {}
        for f, _, decode in self.fields:
            key = f"{where}.{f.name}" if where else f.name
            if f.name in data:
                values[f.name] = decode(data[f.name], key)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{key}: missing, and it has no default")
            # else: written before the field existed; the dataclass gives its default
        return self.cls(**values)


def _codec(hint: Any) -> tuple[_Encode, _Decode]:
    """How a value of type `hint` becomes JSON and comes back."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        others = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(others) != 1 or len(typing.get_args(hint)) != 2:
            raise TypeError(f"no JSON form for {hint}")
        inner_encode, inner_decode = _codec(others[0])
        return (
            lambda v: None if v is None else inner_encode(v),
            lambda v, where: None if v is None else inner_decode(v, where),
        )
    if hint is bool:
        return _same, _decode_bool
    if hint is int:
        return _same, _decode_int
    if hint is float:
        return _encode_float, _decode_float
    if hint is str:
        return _same, _decode_str
    if hint == tuple[str, ...]:
        return list, _decode_strings
    if hint == Mapping[str, str]:
        return dict, _decode_env
    if isinstance(hint, type) and issubclass(hint, enum.StrEnum):
        return _enum_codec(hint, by_value=True)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_codec(hint, by_value=False)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        record = _Record(hint)
        return record.encode, record.decode
    raise TypeError(f"no JSON form for {hint}")


def _same(value: Any) -> Any:
    return value


def _decode_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {_kind(value)}")
    return value


def _decode_int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}: expected an integer, got {_kind(value)}")
    return value


def _encode_float(value: float) -> float:
    # Equal specs must give equal text: 10 and 10.0, 0.0 and -0.0 compare equal.
    return float(value) + 0.0


def _decode_float(value: Any, where: str) -> float:
    # json reads 10.0 back as a float, but a hand-written or older record may say 10.
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{where}: expected a number, got {_kind(value)}")
    return float(value)


def _decode_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string, got {_kind(value)}")
    return value


def _decode_strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected an array of strings, got {_kind(value)}")
    return tuple(_decode_str(item, f"{where}[{i}]") for i, item in enumerate(value))


def _decode_env(value: Any, where: str) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object of strings, got {_kind(value)}")
    env = {_decode_str(k, where): _decode_str(v, f"{where}.{k}") for k, v in value.items()}
    return types.MappingProxyType(env)


def _enum_codec(cls: type[enum.Enum], *, by_value: bool) -> tuple[_Encode, _Decode]:
    def encode(member: enum.Enum) -> Any:
        return member.value if by_value else member.name

    def decode(value: Any, where: str) -> enum.Enum:
        try:
            return cls(value) if by_value else cls[value]
        except (KeyError, ValueError, TypeError):
            raise ValueError(f"{where}: {_kind(value)} is not a {cls.__name__}") from None

    return encode, decode


def _kind(value: Any) -> str:
    """A JSON value as a message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool | int | float | str):
        return repr(value)[:60]
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


_SPEC = _Record(ServiceSpec)
