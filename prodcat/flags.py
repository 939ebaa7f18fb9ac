"""Command-line flags derived from a pydantic-settings model, so env vars and flags never drift.

Precedence: a flag given on the command line, then `PRODCAT_*` environment variables, then defaults.
"""

from __future__ import annotations

import argparse
import os
import types
import typing
from collections.abc import Collection
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


def add_settings_flags(
    parser: argparse.ArgumentParser, settings: type[BaseSettings], *, only: Collection[str] | None = None
) -> None:
    """A flag for each field of `settings`, or for those named in `only` (the ones a command uses)."""
    unknown = set(only or ()) - set(settings.model_fields)
    if unknown:
        raise TypeError(f"{settings.__name__} has no fields {sorted(unknown)}")
    prefix = settings.model_config.get("env_prefix", "")
    group = parser.add_argument_group("service settings (each also read from its environment variable)")
    for name, field in settings.model_fields.items():
        if only is not None and name not in only:
            continue
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


class _EnvValue(str):
    """A default read from an environment variable, so a bad one is reported by its name."""

    __slots__ = ("env",)
    env: str

    def __new__(cls, value: str, env: str) -> _EnvValue:
        made = super().__new__(cls, value)
        made.env = env
        return made


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _env_bool(value: str) -> bool:
    if value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise argparse.ArgumentTypeError(f"not a boolean: {value!r} (1/0, true/false, yes/no, on/off)")


def _checked(action: argparse.Action) -> Any:
    """The action's type, with the choices and the variable's name checked for values from the environment."""
    convert = action.type or str

    def from_env(value: str) -> Any:
        if not isinstance(value, _EnvValue):
            return convert(value)  # type: ignore[operator]
        try:
            result = convert(value)  # type: ignore[operator]
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            detail = str(exc) if isinstance(exc, argparse.ArgumentTypeError) else f"invalid value {value!r}"
            raise argparse.ArgumentTypeError(f"from {value.env}: {detail}") from None
        if action.choices is not None and result not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise argparse.ArgumentTypeError(f"from {value.env}: {value!r} is not one of {choices}")
        return result

    from_env.__name__ = getattr(convert, "__name__", "value")
    return from_env


def add_env_defaults(parser: argparse.ArgumentParser, prefix: str = "PRODCAT_") -> None:
    """Each option of `parser` also reads `<prefix><OPTION>` (e.g. --batch-size: PRODCAT_BATCH_SIZE).

    Precedence as for the service settings: the flag, then the variable, then the default.
    The variable is converted and checked when the command is parsed, like the flag would be.
    """
    # argparse offers no public list of a parser's actions or exclusive groups.
    for action in parser._actions:
        if not action.option_strings or action.dest in (argparse.SUPPRESS, "help"):
            continue
        env = prefix + action.dest.upper()
        action.help = f"{action.help} (env: {env})" if action.help else f"env: {env}"
        value = os.environ.get(env)
        if value is None:
            continue
        if action.nargs == 0:
            # A switch takes no value, so argparse converts its string default with the type only.
            action.type = _env_bool
        action.type = _checked(action)
        action.default = _EnvValue(value, env)
        action.required = False
        for group in parser._mutually_exclusive_groups:
            if action in group._group_actions:
                group.required = False
