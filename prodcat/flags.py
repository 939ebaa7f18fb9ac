"""Command-line flags derived from a pydantic-settings model, so env vars and flags never drift.

Precedence: a flag given on the command line, then `PRODCAT_*` environment variables, then defaults.
"""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings


def _scalar(annotation: Any) -> tuple[Any, tuple[str, ...] | None]:
    """The argparse type and choices for a field's annotation (Optional unwrapped)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is typing.Literal:
        return str, tuple(str(a) for a in typing.get_args(annotation))
    if annotation in (int, float, str, Path):
        return annotation, None
    raise TypeError(f"no flag type for {annotation!r}")


def _env_names(prefix: str, name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        names = [c for c in alias.choices if isinstance(c, str) and c.isupper()]
        if names:
            return " or ".join(names)
    return f"{prefix}{name.upper()}"


def add_settings_flags(parser: argparse.ArgumentParser, settings: type[BaseSettings]) -> None:
    prefix = settings.model_config.get("env_prefix", "")
    group = parser.add_argument_group("service settings (each also read from its environment variable)")
    for name, field in settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = _env_names(prefix, name, field)
        if typing.get_origin(field.annotation) is dict:
            group.add_argument(
                flag,
                dest=name,
                action="append",
                metavar="KEY=VALUE",
                help=f"{field.description or ''} Repeatable. Env: {env} as a JSON object.",
            )
            continue
        default = field.get_default(call_default_factory=True)
        if field.annotation is bool:
            group.add_argument(
                flag,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{field.description or ''} Env: {env}. Default: {default}.".strip(),
            )
            continue
        kind, choices = _scalar(field.annotation)
        group.add_argument(
            flag,
            dest=name,
            type=kind,
            choices=choices,
            default=argparse.SUPPRESS,
            help=f"{field.description or ''} Env: {env}. Default: {default}.".strip(),
        )


def settings_overrides(args: argparse.Namespace, settings: type[BaseSettings]) -> dict[str, Any]:
    """The settings fields given as flags, ready to pass as keyword arguments."""
    overrides: dict[str, Any] = {}
    for name, field in settings.model_fields.items():
        if name not in vars(args) or getattr(args, name) is None:
            continue
        value = getattr(args, name)
        if typing.get_origin(field.annotation) is dict:
            pairs = [item.partition("=") for item in value]
            bad = [key for key, sep, _ in pairs if not sep or not key]
            if bad:
                raise ValueError(f"--{name.replace('_', '-')} takes KEY=VALUE, got {bad[0]!r}")
            value = {key: val for key, _, val in pairs}
        overrides[name] = value
    return overrides
