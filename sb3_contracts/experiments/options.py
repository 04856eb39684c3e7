"""An experiment's settings as command-line options: one name per setting everywhere.

A settings dataclass (a docstring per field, as CleanRL's ``Args``) is the one declaration of an experiment's
settings: :func:`add_settings_arguments` turns every field into an ``argparse`` option of the same name (``_`` read
as ``-``: ``principal_steps`` is ``--principal-steps``), typed from its annotation, defaulted by the dataclass and
documented by the field's docstring; :func:`settings_from_args` builds the dataclass back, which validates it. The
``sb3-contracts`` subcommands, the benchmarks and a sweep's ``--grid``/``--set`` keys all read the same fields.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import re
import textwrap
import types
import typing
from typing import Any


def parse_value(text: str) -> Any:
    """A setting's value from the command line: JSON (numbers, ``true``, ``null``, lists, dicts) or else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (CleanRL's convention), by field name."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source (e.g. a class made at run time): no docs
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, following in zip(body, body[1:], strict=False):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant) and isinstance(following.value.value, str)):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def plain(text: str) -> str:
    """A docstring's reStructuredText as plain text for a terminal: ````x```` as x, ``:func:`~a.b``` as b."""
    text = re.sub(r":\w+:`~?(?:[\w.]*\.)?([\w]+)`", r"\1", text)
    return text.replace("``", "")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _typed(annotation: Any) -> dict[str, Any]:
    """``argparse`` keywords for a field's annotation: its type, ``nargs`` for tuples, a flag pair for booleans."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = [arg for arg in args if arg is not type(None)]
        if len(kinds) == 1:
            return _typed(kinds[0])
        return {"type": parse_value}  # e.g. a name or a share: JSON numbers, else the string
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if annotation in (int, float, str):
        return {"type": annotation}
    if origin in (tuple, list) and args:
        return {"type": args[0] if args[0] in (int, float, str) else parse_value, "nargs": "+"}
    return {"type": parse_value, "metavar": "JSON"}


def add_settings_arguments(parser: argparse.ArgumentParser, settings: type, skip: tuple[str, ...] = ()) -> None:
    """
    One option per field of ``settings`` (but ``skip``), with the dataclass's default and the field's docstring.

    :param parser: the parser (or argument group) to add them to
    :param settings: a settings dataclass
    :param skip: fields to leave out
    """
    hints = typing.get_type_hints(settings)
    docs = field_docs(settings)
    for item in dataclasses.fields(settings):
        if item.name in skip:
            continue
        if item.default is not dataclasses.MISSING:
            default = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = None
        shown = "" if default in (None, {}, ()) else f" (default: {default})"
        help_text = (plain(docs.get(item.name, "")) + shown).replace("%", "%%")
        parser.add_argument(_option(item.name), dest=item.name, default=default, help=help_text,
                            **_typed(hints[item.name]))


def settings_from_args(settings: type, args: argparse.Namespace) -> Any:
    """
    The settings dataclass from parsed options (those :func:`add_settings_arguments` added).

    :param settings: the settings dataclass
    :param args: parsed options
    :raise ValueError: what the dataclass raises, naming the setting
    """
    values = {item.name: getattr(args, item.name) for item in dataclasses.fields(settings) if hasattr(args, item.name)}
    for name, value in values.items():
        if isinstance(value, list):  # nargs="+" gives a list where the dataclass keeps a tuple
            values[name] = tuple(value)
    return settings(**values)
