"""RunSpec's fields as command-line options, so the CLI, YAML files, the Python API and the docs
share one declaration: the field in config.py, with its type, default and help text.

A field becomes ``--field-name``; its metadata may give another spelling (``cli``) and a
one-letter alias (``short``). A bool becomes ``--x/--no-x``. A list is comma-separated
(``--rungs a,b``), or given once per item when ``repeatable`` (``--backbone a --backbone b``:
an item may hold a comma). A type no flag can spell (a mapping) is written as YAML.
RunSpec checks the values, so a bad one fails with the same message as in the API or a YAML file.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field, fields
from typing import Any, List, Optional

import typer
from typer.core import TyperGroup

from .config import RunSpec, coerce_setting, describe_type, fill_rung_lists

SCALARS = (bool, int, float, str)


def _comma_list(item: type, optional: bool) -> Callable[[str], Any]:
    """'a,b' -> ['a', 'b'], each item parsed as the list's item type; '' is an empty list (unset if
    the field may be None)."""
    parse_item = _parse_bool if item is bool else item

    def comma_list(value: str) -> Any:
        if not isinstance(value, str):  # already parsed
            return value
        try:
            items = [parse_item(v.strip()) for v in value.split(",") if v.strip()]
        except ValueError:
            raise ValueError(
                f"{value!r} is not a comma-separated list of items that are each {describe_type(item)}."
            ) from None
        return items or (None if optional else [])

    return comma_list


def _yaml_value(hint: Any) -> Callable[[str], Any]:
    """A value no flag type fits (a mapping) written as YAML, ``--x '{a: b}'``, checked as in a --config file."""

    def yaml_value(value: str) -> Any:
        import yaml

        if not isinstance(value, str):
            return value
        try:
            ok, parsed = coerce_setting(yaml.safe_load(value), hint)
        except yaml.YAMLError:
            ok = False
        if not ok:
            raise ValueError(f"{value!r} is not {describe_type(hint)} written as YAML.")
        return parsed

    return yaml_value


def _parse_bool(value: str) -> bool:
    if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
        raise ValueError(value)
    return value.lower() in ("true", "yes", "1")


def _flag_type(hint: Any) -> tuple[Any, bool]:
    """(the type the flag parses, whether the field may be None): the first alternative a flag can
    spell, so ``dict[str, str] | str | None`` (label_descriptions) takes a file name."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    alternatives = typing.get_args(hint) if union else (hint,)
    optional = type(None) in alternatives
    for a in alternatives:
        if a in SCALARS or typing.get_origin(a) in (list, tuple):
            return a, optional
    return hint, optional


def _default(f: Field) -> Any:
    if f.metadata.get("lazy_default"):  # read from the rung registry when a spec is built
        return None
    return f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default


def option_names(f: Field) -> list[str]:
    """The flag spellings of a field: ``--field-name`` (or its ``cli`` metadata), then ``short``."""
    long = f.metadata.get("cli", "--" + f.name.replace("_", "-"))
    return [long, f.metadata["short"]] if "short" in f.metadata else [long]


def _parameter(f: Field, hint: Any, default: Any, help: str, required: bool, show_default: bool) -> inspect.Parameter:
    """One typer option, as a keyword parameter of the command's signature."""
    kind, optional = _flag_type(hint)
    names, extra = option_names(f), {}
    if kind is bool:
        annotation, names[0] = bool, f"{names[0]}/--no-{names[0][2:]}"
    elif typing.get_origin(kind) in (list, tuple):
        item = (typing.get_args(kind) or (str,))[0]
        if f.metadata.get("repeatable"):
            annotation, help, default = List[item], help + " Repeatable.", list(default or []) or None
        else:
            annotation, extra["parser"] = Optional[str], _comma_list(item, optional)
            extra["metavar"] = f"<{item.__name__},...>"
            help, default = help + " Comma-separated.", ",".join(map(str, default)) if default else None
    elif kind in SCALARS:
        annotation = Optional[kind]
    else:
        annotation, extra["parser"], extra["metavar"] = Optional[str], _yaml_value(hint), "<yaml>"
    option = typer.Option(... if required else default, *names, help=help, show_default=show_default, **extra)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def _typed(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)  # by name: typer may carry its own copy of click's ParameterSource
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


class RungListsGroup(TyperGroup):
    """The command group of the CLI: fills the lists of rungs into a command's option help
    ("{rungs...}" in a RunSpec field's help) when the command is dispatched, since the rung
    registry imports torch, which neither importing the CLI nor ``transferlab --help`` should."""

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        for param in getattr(command, "params", ()):
            if getattr(param, "help", None):
                param.help = fill_rung_lists(param.help)
        return name, command, rest


def spec_options(
    names: Iterable[str] | None = None,
    *,
    defaults: dict[str, Any] | None = None,
    helps: dict[str, str] | None = None,
    required: Iterable[str] = (),
    show_defaults: bool = True,
    spec: type = RunSpec,
) -> Callable[[Callable[..., Any]], Any]:
    """Give a command one option per RunSpec field in ``names`` (every field by default), after its own
    parameters. The command takes ``settings``: only the fields typed on the command line, so the
    options' defaults never override a --config file or the defaults the API applies itself.

    ``defaults`` and ``helps`` change what this command's --help shows for a field; ``required``
    fields must be given; ``spec`` is the settings dataclass.
    """
    chosen = [f for f in fields(spec) if names is None or f.name in set(names)]
    unknown = set(names or ()) - {f.name for f in chosen}
    if unknown:
        raise TypeError(f"Not {spec.__name__} fields: {', '.join(sorted(unknown))}.")
    hints, defaults, helps, required = typing.get_type_hints(spec), defaults or {}, helps or {}, set(required)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "settings"]
        clash = {f.name for f in chosen} & {p.name for p in own}
        if clash:
            raise TypeError(f"{command.__name__}: parameters {', '.join(sorted(clash))} shadow {spec.__name__} fields.")
        generated = [
            _parameter(
                f,
                hints[f.name],
                defaults.get(f.name, _default(f)),
                helps.get(f.name, f.metadata.get("help", "")),
                f.name in required,
                show_defaults,
            )
            for f in chosen
        ]

        context = inspect.Parameter("spec_options_context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)

        @functools.wraps(command)
        def with_settings(spec_options_context: typer.Context, **values: Any) -> Any:
            fields_given = {f.name: values.pop(f.name) for f in chosen}
            typed = {k: v for k, v in fields_given.items() if _typed(spec_options_context, k)}
            return command(**values, settings=typed)

        with_settings.__signature__ = inspect.Signature(own + generated + [context])  # type: ignore[attr-defined]
        return with_settings

    return decorate
