"""Command-line flags derived from a pydantic-settings model, so env vars and flags never drift.

Precedence: a flag given on the command line, then `PRODCAT_*` environment variables, then defaults.
"""

from __future__ import annotations

import argparse
import os
import re
import types
import typing
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

from pydantic import AliasChoices, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsError

Settings = TypeVar("Settings", bound=BaseSettings)

# The command groups whose options read the environment, each under a prefix of its own, so
# a variable exported for one command (PRODCAT_TOP_K for the consumer) never reaches another
# (dataset build's --top-k reads PRODCAT_DATASET_TOP_K).
COMMAND_ENV_PREFIXES = {
    "base": "PRODCAT_BASE_",
    "dataset": "PRODCAT_DATASET_",
    "train": "PRODCAT_TRAIN_",
    "evaluate": "PRODCAT_EVALUATE_",
    "registry": "PRODCAT_REGISTRY_",
}
# pydantic-settings' words for a variable it could not decode (a JSON value that is not JSON).
_UNDECODABLE = re.compile(r'error parsing value for field "(\w+)"')
# What a mapping setting (--kafka) takes from its environment variable.
_JSON_OBJECT = 'a JSON object of strings, e.g. \'{"security.protocol": "SASL_SSL"}\''


def _scalar(annotation: Any) -> tuple[Any, tuple[str, ...] | None]:
    """The argparse type and choices for a field's annotation (Optional unwrapped)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is typing.Literal:
        return str, tuple(str(a) for a in typing.get_args(annotation))
    if annotation in (int, float, str, Path):
        return annotation, None
    raise TypeError(f"no flag type for {annotation!r}")


def _env_list(prefix: str, name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        names = [c for c in alias.choices if isinstance(c, str) and c.isupper()]
        if names:
            return names
    return [f"{prefix}{name.upper()}"]


def _env_names(prefix: str, name: str, field: FieldInfo) -> str:
    return " or ".join(_env_list(prefix, name, field))


def env_names(settings: type[BaseSettings]) -> dict[str, list[str]]:
    """Each field's environment variables, in the order they are looked up."""
    prefix = settings.model_config.get("env_prefix", "")
    return {name: _env_list(prefix, name, field) for name, field in settings.model_fields.items()}


def load_settings(
    settings: type[Settings], flags: dict[str, Any], *, only: Collection[str] | None = None
) -> Settings:
    """`settings` from the flags given, then the environment, then the defaults.

    Fields outside `only` (those a command does not read) keep their defaults whatever the
    environment says. A bad value raises ValueError, one line naming the flag or the
    environment variable it came from and what was expected.
    """
    pinned = {
        name: field.get_default(call_default_factory=True)
        for name, field in settings.model_fields.items()
        if only is not None and name not in only
    }
    try:
        return settings(**{**pinned, **flags})
    except SettingsError as exc:
        raise ValueError(f"invalid settings: {_undecodable(settings, exc)}") from None
    except ValidationError as exc:
        raise ValueError(f"invalid settings: {_describe(settings, exc, flags)}") from None


def _set_variable(names: list[str]) -> str | None:
    """The first of `names` set in the environment (pydantic-settings ignores case)."""
    lowered = {key.lower(): key for key in os.environ}
    return next((lowered[n.lower()] for n in names if n.lower() in lowered), None)


def _undecodable(settings: type[BaseSettings], exc: SettingsError) -> str:
    found = _UNDECODABLE.search(str(exc))
    if found is None or not _is_mapping(settings, found.group(1)):
        return str(exc)
    name = found.group(1)
    variable = _set_variable(env_names(settings)[name]) or name.upper()
    return f"{variable}={os.environ.get(variable, '')!r}: not {_JSON_OBJECT}"


def _is_mapping(settings: type[BaseSettings], name: str) -> bool:
    field = settings.model_fields.get(name)
    return field is not None and typing.get_origin(field.annotation) is dict


def _describe(settings: type[BaseSettings], exc: ValidationError, flags: dict[str, Any]) -> str:
    """The first three problems, each naming its flag or variable (a rule across settings names none)."""
    names = env_names(settings)
    parts = []
    for error in exc.errors()[:3]:
        loc = [str(p) for p in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if not loc:
            parts.append(message)
            continue
        field, *inner = loc
        if not inner and _is_mapping(settings, field):
            message = f"not {_JSON_OBJECT}"
        variable = None if field in flags or field not in names else _set_variable(names[field])
        if variable is not None:
            where = f"{variable}={os.environ[variable]!r}"
        elif field in flags:
            where = "--" + field.replace("_", "-")
        else:
            where = field
        key = f"[{'.'.join(inner)}]" if inner else ""
        parts.append(f"{where}{key}: {message}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


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


def add_env_defaults(parser: argparse.ArgumentParser, prefix: str) -> None:
    """Each option of `parser` also reads `<prefix><OPTION>` (train's --batch-size: PRODCAT_TRAIN_BATCH_SIZE).

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
