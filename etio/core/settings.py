"""The study's settings: every table of a study's TOML file as a typed, frozen dataclass.

A settings class declares each key once, with :func:`setting`: its default and the check its
value passes (:class:`Integer`, :class:`Number`, :class:`Flag`, :class:`Choice`, :class:`Text`,
:class:`Items`, :class:`Maybe`, :class:`Where`). A nested table (``[attacks.memguard]``) is a
field declared with :func:`table`. :func:`parse_table` is the one road from a mapping (a TOML
table, a store's ``store.json``, the command line's values) to such an object; a wrong key or
value stops it with one line naming the file, the table, the key and the value::

    experiments/x.toml: [attacks] memguard.max_iteration = -1: must be an integer ≥ 1

A key that moved into a nested table (``memguard_max_iteration`` → ``[attacks.memguard]
max_iteration``) is still read in its old place: the flat name is the table's name, ``_``
and the key, which is also the form :func:`flat_record` writes for stored results.

:func:`read_toml` is the one place a TOML file is read (``tests/core/test_layout.py`` keeps it so).
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from etio.core.errors import EtioInputError, check_choice, read_error


class Invalid(Exception):
    """A value failed its check; ``reason`` completes ``key = value: <reason>`` (``names_value``:
    the reason names the value itself, so a list's check need not)."""

    def __init__(self, reason: str, names_value: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.names_value = names_value


# --------------------------------------------------------------------------------------
# Checks: each converts a valid value to its typed form or raises Invalid with the reason
# --------------------------------------------------------------------------------------

def _is_integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Integer:
    """A whole number (never a bool) in [minimum, maximum] (``None``: no bound)."""

    minimum: int | None = 0
    maximum: int | None = None

    def __call__(self, v):
        low = self.minimum is None or (_is_integer(v) and v >= self.minimum)
        high = self.maximum is None or (_is_integer(v) and v <= self.maximum)
        if not (_is_integer(v) and low and high):
            bound = ("" if self.minimum is None and self.maximum is None
                     else f" ≥ {self.minimum}" if self.maximum is None
                     else f" ≤ {self.maximum}" if self.minimum is None
                     else f" in [{self.minimum}, {self.maximum}]")
            raise Invalid(f"must be an integer{bound}")
        return v


@dataclass(frozen=True)
class Number:
    """A finite number (never a bool), returned as a float; ``open`` names the open ends ("low", "high")."""

    minimum: float = -math.inf
    maximum: float = math.inf
    open: tuple[str, ...] = ()

    def __call__(self, v):
        # NaN compares false with everything, so finiteness comes first: lr = nan trains NaN models.
        if not _is_number(v) or not math.isfinite(v) or not self._inside(v):
            raise Invalid(f"must be a finite number{self._bounds()}")
        return float(v)

    def _inside(self, v) -> bool:
        low = v > self.minimum if "low" in self.open else v >= self.minimum
        high = v < self.maximum if "high" in self.open else v <= self.maximum
        return low and high

    def _bounds(self) -> str:
        low, high = math.isfinite(self.minimum), math.isfinite(self.maximum)
        if low and high:
            return (f" in {'(' if 'low' in self.open else '['}{self.minimum:g}, {self.maximum:g}"
                    f"{')' if 'high' in self.open else ']'}")
        if low:
            return f" {'>' if 'low' in self.open else '≥'} {self.minimum:g}"
        if high:
            return f" {'<' if 'high' in self.open else '≤'} {self.maximum:g}"
        return ""


@dataclass(frozen=True)
class Flag:
    def __call__(self, v):
        if not isinstance(v, bool):
            raise Invalid("must be true or false")
        return v


@dataclass(frozen=True)
class Choice:
    """One of ``values``; ``what`` names the kind of thing, and a wrong one is reported as every
    wrong name is (:func:`etio.core.errors.check_choice`: ``unknown <what> 'x'; known <whats>: ...``)."""

    values: tuple[str, ...]
    what: str | None = None

    def __call__(self, v):
        if v not in self.values:
            if self.what is None:
                raise Invalid(f"must be one of {', '.join(map(str, self.values))}")
            try:
                check_choice(self.what, v, self.values)
            except EtioInputError as exc:
                raise Invalid(str(exc), names_value=True) from None
        return v


@dataclass(frozen=True)
class Text:
    """A string, optionally matching ``pattern`` in full (``what`` says what it must be)."""

    pattern: str | None = None
    what: str = "a string"

    def __call__(self, v):
        if not isinstance(v, str) or (self.pattern is not None and not re.fullmatch(self.pattern, v)):
            raise Invalid(f"must be {self.what}")
        return v


@dataclass(frozen=True)
class Items:
    """A list of values passing ``item``, returned as a tuple; ``nonempty``: at least one;
    ``single``: a lone value stands for a list of one."""

    item: Callable
    nonempty: bool = True
    single: bool = False

    def __call__(self, v):
        if self.single and not isinstance(v, list):
            v = [v]
        if not isinstance(v, (list, tuple)):
            raise Invalid("must be a list")
        if self.nonempty and not v:
            raise Invalid("must be a non-empty list")
        out = []
        for x in v:
            try:
                out.append(self.item(x))
            except Invalid as exc:
                raise Invalid(exc.reason if exc.names_value else f"{x!r} {exc.reason}", names_value=True) from None
        return tuple(out)


@dataclass(frozen=True)
class Maybe:
    """``None`` (a store's form of a key left out) or a value passing ``inner``."""

    inner: Callable

    def __call__(self, v):
        return None if v is None else self.inner(v)


@dataclass(frozen=True)
class Where:
    """A value passing ``inner`` and then ``holds``; else ``reason``."""

    inner: Callable
    holds: Callable[[Any], bool]
    reason: str

    def __call__(self, v):
        v = self.inner(v)
        if not self.holds(v):
            raise Invalid(self.reason)
        return v


# --------------------------------------------------------------------------------------
# Declaring fields
# --------------------------------------------------------------------------------------

def setting(default: Any = MISSING, check: Callable | None = None, *, factory: Callable | None = None):
    """A field of a settings class: its default and the check a given value passes."""
    meta = {"check": check}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def table(cls, *, flat_keys: bool = False):
    """A nested table (``[attacks.memguard]``): a field holding a settings class, defaults when absent.
    ``flat_keys``: its keys were once keys of the enclosing table (``memguard_max_iteration``) and
    are still read there."""
    return field(default_factory=cls, metadata={"table": cls, "flat_keys": flat_keys})


def _nested(f) -> type | None:
    return f.metadata.get("table")


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------

def fail(source: str, message: str):
    """Raise the one-line input error ``source: message``."""
    raise EtioInputError(f"{source}: {message}" if source else message)


def parse_table(cls, raw: Mapping[str, Any] | None, *, name: str, source: str = "config", prefix: str = ""):
    """``raw`` (``None``: an absent table) as an instance of the settings class ``cls``.

    ``name``: the table's name in messages (``attacks`` → ``[attacks]``; ``""``: the top level of
    the file, whose nested tables are then named by their key); ``source``: the file (or
    "command line"). Unknown keys, wrong values and keys given both in their old flat place and
    in their nested table are errors naming them."""
    where = f"[{name}{'.' + prefix[:-1] if prefix else ''}]" if name else "the top level"
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        fail(source, f"{where} must be a table, got {raw!r}")
    raw = _unflatten(cls, dict(raw), name, source, prefix)
    known = [f.name for f in fields(cls)]
    for key in raw:
        if key not in known:
            fail(source, f"unknown key {key!r} in {where}; allowed keys: {', '.join(sorted(known))}")
    values = {}
    for f in fields(cls):
        if f.name not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                fail(source, f"missing key {f.name!r} in {where}")
            continue
        if _nested(f):
            values[f.name] = (parse_table(_nested(f), raw[f.name], name=name, source=source, prefix=f"{prefix}{f.name}.")
                              if name else parse_table(_nested(f), raw[f.name], name=f.name, source=source))
        else:
            values[f.name] = check_value(f, raw[f.name], name=name, source=source, prefix=prefix)
    return cls(**values)


def check_value(f, value, *, name: str, source: str, prefix: str = ""):
    """``value`` for field ``f`` after its check, else the one line naming the key and the value."""
    check = f.metadata.get("check")
    if check is None:
        return value
    try:
        return check(value)
    except Invalid as exc:
        fail(source, f"{f'[{name}] ' if name else ''}{prefix}{f.name} = {_shown(value)}: {exc.reason}")


def _shown(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return repr(value)


def _unflatten(cls, raw: dict, name: str, source: str, prefix: str) -> dict:
    """Move old flat keys (``memguard_max_iteration``) into their nested table (``memguard``)."""
    for f in fields(cls):
        sub = _nested(f)
        if sub is None or not f.metadata.get("flat_keys"):
            continue
        for g in fields(sub):
            old = f"{f.name}_{g.name}"
            if old not in raw:
                continue
            nested = raw.get(f.name, {})
            if not isinstance(nested, Mapping):
                fail(source, f"[{name}{'.' + prefix[:-1] if prefix else ''}] {f.name} must be a table, got {nested!r}")
            if g.name in nested:
                fail(source, f"[{name}] {prefix}{old} moved to [{name}.{prefix}{f.name}] {g.name}; "
                             f"give it once, in its new place")
            raw[f.name] = {**nested, g.name: raw.pop(old)}
    return raw


def with_values(obj, values: Mapping[str, Any], *, name: str, source: str = "command line"):
    """``obj`` with ``values`` (e.g. command-line options) in place of its own, each checked."""
    by_name = {f.name: f for f in fields(obj)}
    given = {}
    for key, value in values.items():
        if key not in by_name or _nested(by_name[key]):
            fail(source, f"unknown key {key!r} in [{name}]")
        given[key] = check_value(by_name[key], value, name=name, source=source)
    return replace(obj, **given) if given else obj


# --------------------------------------------------------------------------------------
# Writing back
# --------------------------------------------------------------------------------------

def to_table(obj) -> dict[str, Any]:
    """The settings as a TOML/JSON table: nested tables as tables, tuples as lists."""
    return {f.name: (to_table(v) if _nested(f) else _plain(v)) for f in fields(obj) for v in [getattr(obj, f.name)]}


def flat_record(obj) -> dict[str, Any]:
    """The settings as one flat table: a nested table's keys as ``<table>_<key>`` at its place
    (the form stored beside computed results, which earlier runs wrote too)."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if _nested(f):
            out.update({f"{f.name}_{k}": x for k, x in flat_record(v).items()})
        else:
            out[f.name] = _plain(v)
    return out


def flat_table(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A table as written, its nested tables' keys as ``<table>_<key>`` at their place: the form a
    store and a run's provenance keep a later stage's table in (the same for a config written
    before the nested tables existed and for one written after)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping):
            out.update({f"{key}_{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _plain(v):
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if is_dataclass(v):
        return to_table(v)
    return v


# --------------------------------------------------------------------------------------
# Reading the file
# --------------------------------------------------------------------------------------

def read_toml(path: Path | str) -> dict[str, Any]:
    """The mapping of a TOML config file; a missing or malformed file is one clear error."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise EtioInputError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise EtioInputError(f"config file {path} is a directory") from None
    except UnicodeDecodeError:
        raise EtioInputError(f"config file {path} is not text") from None
    except tomllib.TOMLDecodeError as exc:
        raise EtioInputError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:      # no permission, an I/O error: a filesystem fault (exit 1)
        raise read_error(path, exc, "config file") from None
