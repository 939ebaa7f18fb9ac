"""Argument types and the parser class shared by every `prodcat` subcommand."""

from __future__ import annotations

import argparse
import math
import typing
from pathlib import Path
from typing import TypeVar

Number = TypeVar("Number", int, float)


class OneLineParser(argparse.ArgumentParser):
    """Bad input gets one line naming the problem and where help is, not the whole usage."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return path


def existing_path(value: str) -> Path:
    path = Path(value)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or directory: {value}")
    return path


def positive_int(value: str) -> int:
    return positive(value, int)


def positive_float(value: str) -> float:
    return positive(value, float)


def positive(value: str, kind: type[Number]) -> Number:
    try:
        number = kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of type {kind.__name__}: {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be finite, got {number}")
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {number}")
    return number


def base_model_arg(value: str) -> str:
    """A hub id passes through; something that looks like a path must be a model directory."""
    path = Path(value)
    looks_like_path = value.startswith((".", "/", "~")) or path.exists() or value.count("/") > 1
    if looks_like_path and not (path.expanduser() / "config.json").is_file():
        raise argparse.ArgumentTypeError(f"{value} is not a model directory (no config.json)")
    return str(path.expanduser()) if looks_like_path else value


def fraction(value: str) -> float:
    """A share in [0, 1)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {number}")
    return number


def registry_arg(value: str) -> str:
    """A registry location: a local path, or a URI of a scheme `open_registry` knows."""
    from prodcat.model.registry import SCHEMES

    scheme, found, rest = value.partition("://")
    if found and (scheme not in SCHEMES or not rest.strip("/")):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a registry: use a path, s3://bucket/prefix, gs://bucket/prefix, "
            "az://container/prefix or hf://org/repo[@revision]"
        )
    return value
