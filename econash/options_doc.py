"""What `econash list KIND --options` shows: each plugin's options, read from its ``Options`` model.

A plugin declares each option once, with its type, default and ``Field(description=...)``; this
module turns that declaration into rows (name, type, default, description), so the listing can never
disagree with what the registry validates. A nested model (the econash method's ``learner``) is
listed option by option, dotted (``learner.lr``), the way ``-B method_options.learner.lr=...`` sets
it. A factory without an ``Options`` model is read from its signature (no descriptions there).
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from econash.redaction import OPTION_OWNERS
from econash.registry import Entry
from econash.strict_model import StrictModel

__all__ = ["OptionDoc", "describe_options", "options_lines", "set_with"]

#: the arguments the core passes a factory of each kind itself: not options a user sets
FIXED_ARGUMENTS = {"backends": {"model", "base_url"}, "tasks": {"data"}}


class OptionDoc(StrictModel):
    """One option of a plugin: its (dotted) name, type, default (JSON) and description."""

    name: str
    type: str
    default: Any = None
    required: bool = False
    description: str = ""


def type_text(annotation: Any) -> str:
    """A type as a user writes its value: ``int``, ``float | None``, ``list[str]``, ``'a' | 'b'``."""
    if annotation is type(None):
        return "None"
    if isinstance(annotation, list):  # a Callable's parameters
        return f"[{', '.join(type_text(arg) for arg in annotation)}]"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_text(arg) for arg in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_text(arg) for arg in args)}]" if args else name
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _default(field: FieldInfo) -> tuple[Any, bool]:
    """The field's default as JSON, and whether the field is required (has none)."""
    if field.default_factory is not None:
        return to_jsonable_python(field.default_factory()), False  # type: ignore[call-arg]
    if field.default is PydanticUndefined:
        return None, True
    return to_jsonable_python(field.default), False


def model_options(model: type[BaseModel], prefix: str = "") -> list[OptionDoc]:
    """Every option of an Options model, nested models' options dotted, in declaration order."""
    rows: list[OptionDoc] = []
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is not None:
            rows.extend(model_options(nested, f"{prefix}{name}."))
            continue
        default, required = _default(field)
        rows.append(OptionDoc(name=f"{prefix}{name}", type=type_text(field.annotation), default=default,
                              required=required, description=" ".join((field.description or "").split())))
    return rows


def signature_options(entry: Entry) -> list[OptionDoc]:
    """The keyword options of a factory without an Options model, from its signature and type hints."""
    target = entry.factory.__init__ if inspect.isclass(entry.factory) else entry.factory
    try:
        parameters = inspect.signature(target).parameters.values()
        hints = typing.get_type_hints(target)
    except (TypeError, ValueError, NameError):
        return []
    fixed = FIXED_ARGUMENTS.get(entry.kind, set()) | {"self"}
    rows = []
    for parameter in parameters:
        if parameter.name in fixed or parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            continue
        required = parameter.default is inspect.Parameter.empty
        rows.append(OptionDoc(name=parameter.name, type=type_text(hints.get(parameter.name, Any)),
                              default=None if required else to_jsonable_python(parameter.default, fallback=repr),
                              required=required))
    return rows


def describe_options(entry: Entry) -> list[OptionDoc]:
    """The options of a registered plugin (empty when it takes none)."""
    model = entry.options_model()
    return model_options(model) if model is not None else signature_options(entry)


def set_with(kind: str) -> str | None:
    """How a run sets the options of a plugin of ``kind`` (None: a run builds them without options)."""
    flags = {"backends": "-M NAME=VALUE", "tasks": "-T NAME=VALUE"}
    key = next((key for key, (owner, _) in OPTION_OWNERS.items() if owner == kind), None)
    if key is None:
        return None
    return f"{flags[kind]} or -B {key}.NAME=VALUE" if kind in flags else f"-B {key}.NAME=VALUE"


def _heading(option: OptionDoc) -> str:
    import json

    default = "required" if option.required else f"default {json.dumps(option.default)}"
    return f"  {option.name} ({option.type}, {default})"


def options_lines(entry: Entry, width: int = 100) -> list[str]:
    """The options of one plugin for the text listing: a line with each option's name, type and
    default, then its description wrapped below it."""
    import textwrap

    options = describe_options(entry)
    if not options:
        return ["  (no options)"]
    lines = []
    for option in options:
        lines.append(_heading(option))
        lines.extend(textwrap.wrap(option.description, width, initial_indent=" " * 6, subsequent_indent=" " * 6))
    return lines
