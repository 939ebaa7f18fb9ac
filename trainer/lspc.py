"""Reading product offers: the LSPC V2020 archive, streamed, or a user's own JSON lines.

The archive is a zip of `*.json.gz` / `*.json` members with one JSON offer a line. It is
read member by member and line by line, never whole. A bad line is counted by its reason
and skipped; only an archive that cannot be opened at all is an error.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from prodcat.errors import ConfigError
from prodcat.trainer.progress import Progress
from prodcat.trainer.progress import progress as show_progress

TextMode = Literal["title", "title+description"]
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Offer:
    text: str
    category: str
    cluster_id: str


@dataclass
class ReadStats:
    members_read: list[str] = field(default_factory=list)
    members_skipped: list[str] = field(default_factory=list)
    lines: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class TextOptions:
    mode: TextMode = "title"
    max_chars: int | None = None


def normalise(text: str) -> str:
    """HTML entities decoded, whitespace runs collapsed to one space, ends stripped."""
    return _SPACES.sub(" ", html.unescape(text)).strip()


def offer_text(document: dict[str, Any], options: TextOptions) -> str:
    title = document.get("title") or document.get("name")
    if not isinstance(title, str):
        return ""
    text = normalise(title)
    description = document.get("description")
    if options.mode == "title+description" and isinstance(description, str) and description.strip():
        text = f"{text} {normalise(description)}"
    return text[: options.max_chars] if options.max_chars else text


def read_mapping(path: Path) -> dict[str, str]:
    """`cluster_id<TAB>category` lines; a header line is allowed."""
    if not path.is_file():
        raise ConfigError(f"mapping file {path} does not exist")
    mapping: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        cluster, sep, category = line.partition("\t")
        if not sep or not cluster.strip() or not category.strip():
            raise ConfigError(f"{path}:{number}: expected cluster_id<TAB>category")
        if number == 1 and not cluster.strip().isdigit():
            continue
        mapping[cluster.strip()] = category.strip()
    return mapping


def _offer(line: bytes, text: TextOptions, *, mapping: dict[str, str] | None, grouped: bool) -> Offer | str:
    """The offer on one line, or the reason it was skipped.

    `grouped` input (LSPC) must name each offer's cluster; elsewhere an offer without one
    is grouped by its text, so identical titles never sit in two splits.
    """
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "invalid_json"
    if not isinstance(document, dict):
        return "not_an_object"
    cluster = document.get("cluster_id")
    has_cluster = cluster is not None and str(cluster).strip() != ""
    if grouped and not has_cluster:
        return "missing_cluster_id"
    content = offer_text(document, text)
    if not content:
        return "missing_title"
    category = mapping.get(str(cluster)) if mapping is not None else document.get("category")
    if not isinstance(category, str) or not category.strip():
        return "missing_label"
    group = str(cluster) if has_cluster else hashlib.sha1(content.casefold().encode()).hexdigest()
    return Offer(text=content, category=category.strip(), cluster_id=group)


def _offers(
    lines: Iterable[bytes], text: TextOptions, stats: ReadStats, bar: Progress, **how: Any
) -> Iterator[Offer]:
    for line in lines:
        if not line.strip():
            continue
        stats.lines += 1
        bar.update()
        parsed = _offer(line, text, **how)
        if isinstance(parsed, str):
            stats.skipped[parsed] += 1
        else:
            yield parsed


MEMBER_SUFFIXES = (".json.gz", ".json")


def _members(path: Path, stats: ReadStats) -> Iterator[tuple[str, Callable[[], IO[bytes]]]]:
    """(name, opener) for each JSON-lines member: of a zip archive, or the file itself."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(MEMBER_SUFFIXES):
                    yield name, partial(archive.open, name)
                else:
                    stats.members_skipped.append(name)
    else:
        # Some LSPC downloads are a single gzipped JSON-lines file rather than a zip.
        yield path.name, lambda: path.open("rb")


def read_lspc(
    path: Path,
    *,
    mapping: dict[str, str] | None = None,
    text: TextOptions = TextOptions(),
    stats: ReadStats,
    progress: bool = True,
) -> Iterator[Offer]:
    """Offers of an LSPC zip archive (members `*.json.gz` / `*.json`) or of one such file."""
    if not path.is_file():
        raise ConfigError(f"{path} does not exist")
    # Checked before the progress bar opens, so a wrong file gets one line and nothing else.
    if not (zipfile.is_zipfile(path) or path.name.endswith(MEMBER_SUFFIXES)):
        raise ConfigError(f"{path.name} is not a zip archive")
    with show_progress("offers", unit=" offers", enabled=progress) as bar:
        for name, opener in _members(path, stats):
            stats.members_read.append(name)
            try:
                with opener() as raw, gzip.open(raw) if name.endswith(".gz") else raw as lines:
                    yield from _offers(lines, text, stats, bar, mapping=mapping, grouped=True)
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                # A damaged member costs its remaining lines, not the whole build.
                stats.skipped["damaged_member"] += 1
                stats.members_skipped.append(f"{name} ({exc})")


def read_catalogue(
    path: Path, *, text: TextOptions = TextOptions(), stats: ReadStats, progress: bool = True
) -> Iterator[Offer]:
    """A user's own JSON lines with `title` (or `name`) and `category`, `cluster_id` optional."""
    if not path.is_file():
        raise ConfigError(f"{path} does not exist")
    stats.members_read.append(path.name)
    with path.open("rb") as lines, show_progress("offers", unit=" offers", enabled=progress) as bar:
        yield from _offers(lines, text, stats, bar, mapping=None, grouped=False)
