"""Declared options: a dataclass field with the help, choices and range that the CLI, the app and validation
read, so a command's flags, its form widgets and its checks come from one declaration.

`RunSpec`, `DataSource`, the audit's `AuditConfig` and the report's `ReportConfig` all declare their fields with
`param()`; `cli.add_param_flags` turns them into flags, `ui.common.param_widget` into widget limits, and
`check_fields` validates an instance.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import field

from normbt_viz.errors import SpecError


def param(default=None, help: str = "", *, choices: tuple | None = None, low: float | None = None,
          high: float | None = None, low_open: bool = False, high_open: bool = False, flag: bool | str = True,
          default_factory=None, group: str = ""):
    """A field with what the CLI, the app and validation need to know about it.

    `choices` or the range [low, high] (either end open with low_open / high_open) say what is allowed (for a
    tuple field: each item); the field's annotation says its type and whether None ("unset") is allowed.
    `flag=False` keeps bookkeeping fields off the command line; a string names the flag when it is not the
    field's name (`--benchmark` for the field `benchmarks`)."""
    metadata = {"help": help, "choices": choices, "low": low, "high": high, "low_open": low_open,
                "high_open": high_open, "flag": flag, "group": group}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


KINDS = {"str": str, "int": int, "float": float, "bool": bool, "dict": dict}


def field_kind(declared: dataclasses.Field) -> tuple[type, bool]:
    """(the field's value type, whether None is allowed), read from its annotation (`int | None` and so on).
    A `tuple[int, ...]` field's kind is its items' kind; `is_list` tells the two apart."""
    parts = [part.strip() for part in str(declared.type).split("|")]
    optional = "None" in parts
    kind = next(part for part in parts if part != "None")
    if is_list(declared):
        kind = kind.removeprefix("tuple[").split(",")[0].strip()
    return KINDS[kind], optional


def is_list(declared: dataclasses.Field) -> bool:
    """Whether the field holds a tuple of items (a comma-separated list on the command line)."""
    return str(declared.type).startswith("tuple[")


def expected_text(declared: dataclasses.Field) -> str:
    """What a valid value looks like, in words: 'one of a, b', 'an integer >= 1', 'a number in (0, 1)'."""
    kind, optional = field_kind(declared)
    meta = declared.metadata
    if meta.get("choices"):
        text = "one of " + ", ".join(map(str, meta["choices"]))
    else:
        noun = {int: "an integer", float: "a number", bool: "true or false", dict: "a JSON object", str: "text"}[kind]
        low, high = meta.get("low"), meta.get("high")
        if low is not None and high is not None:
            text = f"{noun} in {'(' if meta['low_open'] else '['}{low:g}, {high:g}{')' if meta['high_open'] else ']'}"
        elif low is not None:
            text = f"{noun} {'>' if meta['low_open'] else '>='} {low:g}"
        elif high is not None:
            text = f"{noun} {'<' if meta['high_open'] else '<='} {high:g}"
        else:
            text = noun
        if kind is float and low == 0 and meta["low_open"] and high is None:
            text = "a positive number"
    if is_list(declared):
        text = f"a comma-separated list, each {text}"
    return text + (" or none" if optional else "")


def _item_ok(declared: dataclasses.Field, kind: type, value) -> bool:
    meta = declared.metadata
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    else:
        ok = isinstance(value, kind)
    if not ok or (meta.get("choices") and value not in meta["choices"]):
        return False
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value <= low if meta["low_open"] else value < low):
        return False
    return not (high is not None and (value >= high if meta["high_open"] else value > high))


def field_problem(declared: dataclasses.Field, value) -> str | None:
    """None when `value` is valid for the field, else the expected_text to report."""
    kind, optional = field_kind(declared)
    if value is None:
        return None if optional else expected_text(declared)
    if is_list(declared):
        ok = isinstance(value, (tuple, list)) and all(_item_ok(declared, kind, item) for item in value)
    else:
        ok = _item_ok(declared, kind, value)
    return None if ok else expected_text(declared)


def check_fields(options, prefix: str = "") -> None:
    """Raise one SpecError line for the first declared field of `options` whose value is invalid."""
    for declared in dataclasses.fields(options):
        if "help" not in declared.metadata:
            continue
        value = getattr(options, declared.name)
        problem = field_problem(declared, value)
        if problem:
            raise SpecError(f"{prefix}{declared.name}={value!r} is invalid: expected {problem}")


def field_named(options_class, name: str) -> dataclasses.Field:
    """The declared field called `name` (for the CLI generator and the app's widget limits)."""
    return next(f for f in dataclasses.fields(options_class) if f.name == name)


def flag_fields(options_class) -> list[dataclasses.Field]:
    """The fields the command line sets, in declaration order."""
    return [f for f in dataclasses.fields(options_class) if f.metadata.get("flag", False)]


def flag_name(declared: dataclasses.Field) -> str:
    """`--max-length` for `max_length`, or the name the declaration gives."""
    named = declared.metadata.get("flag")
    return "--" + (named if isinstance(named, str) else declared.name).replace("_", "-")


def flag_value_text(value) -> str:
    """A value as its flag takes it: JSON for a mapping, comma-separated for a tuple, else str()."""
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def flags_for(options, baseline=None) -> list[str]:
    """The command-line arguments that set every flag field of `options` that differs from `baseline` (default:
    the class's defaults), so a background process or a printed command reproduces exactly these options."""
    baseline = baseline if baseline is not None else type(options)()
    argv = []
    for declared in flag_fields(type(options)):
        value = getattr(options, declared.name)
        if value == getattr(baseline, declared.name) or (value is None and not is_list(declared)):
            continue
        flag = flag_name(declared)
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag.removeprefix("--"))
        else:
            argv += [flag, flag_value_text(value)]
    return argv
