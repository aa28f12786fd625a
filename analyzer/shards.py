"""Turn what the user typed (paths, globs, directories, fsspec URLs) into a list of shards.

A shard is the unit of work: one input file, read by one task, producing one tags file.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, replace
from typing import IO, cast

import fsspec

from analyzer.errors import InputError, one_line

SHARD_SUFFIXES = (
    ".parquet",
    ".jsonl",
    ".jsonl.gz",
    ".jsonl.zst",
    ".jsonl.zstd",
    ".json",
    ".json.gz",
    ".json.zst",
    ".json.zstd",
    ".ndjson",
    ".ndjson.gz",
)
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Shard:
    """One input file: its fsspec URL, the name shown to people, and a stable output key."""

    url: str
    name: str
    size_bytes: int

    @property
    def key(self) -> str:
        """A filesystem-safe, collision-free name for this shard's outputs."""
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", self.name)[-80:]
        digest = hashlib.sha1(self.url.encode("utf-8")).hexdigest()[:10]
        return f"{stem}-{digest}"


def _is_shard_file(path: str) -> bool:
    return path.lower().endswith(SHARD_SUFFIXES)


def _display_name(url: str) -> str:
    """The last two path components: `fineweb/000_00000.parquet` is what people recognise."""
    parts = url.rstrip("/").split("/")
    return "/".join(parts[-2:])


def resolve_shards(inputs: tuple[str, ...] | list[str]) -> list[Shard]:
    """Expand every input into shard files, sorted and deduplicated; raise InputError if none.

    Shard names are unique within the run: two shards whose last two path components agree
    (`a/x/000.parquet`, `b/x/000.parquet`) are named by as many components as tell them apart,
    because the name is what documents, skipped rows and the accounting are keyed on.
    """
    if not inputs:
        raise InputError("no input given: pass shard paths, globs, directories or URLs")
    found: dict[str, Shard] = {}
    for spec in inputs:
        for shard in _expand(spec):
            found.setdefault(shard.url, shard)
    return _unique_names(sorted(found.values(), key=lambda shard: shard.url))


def _unique_names(shards: list[Shard]) -> list[Shard]:
    names: dict[str, int] = {}
    for shard in shards:
        names[shard.name] = names.get(shard.name, 0) + 1
    if all(count == 1 for count in names.values()):
        return shards
    renamed = []
    for shard in shards:
        if names[shard.name] == 1:
            renamed.append(shard)
            continue
        clashing = [other.url for other in shards if other.name == shard.name]
        renamed.append(replace(shard, name=_distinct_suffix(shard.url, clashing)))
    return renamed


def _distinct_suffix(url: str, clashing: list[str]) -> str:
    """The shortest tail of `url` (in path components, at least two) no other clashing URL ends with."""
    parts = url.rstrip("/").split("/")
    for length in range(2, len(parts) + 1):
        tail = "/".join(parts[-length:])
        if not any(other != url and other.rstrip("/").endswith("/" + tail) for other in clashing):
            return tail
    return url


def is_local(url: str) -> bool:
    """True for a plain local path (no `scheme://`), which is opened without fsspec's URL parsing."""
    return "://" not in url


def open_shard(shard: Shard) -> IO[bytes]:
    """Open a shard for binary reading; a file that vanished or cannot be read is an InputError."""
    try:
        if is_local(shard.url):
            # a local path is opened as it is: fsspec would read `a::b` as a chained URL
            return open(shard.url, "rb")
        return cast(IO[bytes], fsspec.open(shard.url, "rb").open())
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{shard.url}: cannot open the shard ({one_line(exc)}); check that it exists and is readable"
        ) from exc
    except Exception as exc:  # remote filesystems raise their own HTTP and client errors
        raise InputError(
            f"{shard.url}: cannot reach the shard ({exc.__class__.__name__}: {one_line(exc)}); "
            "check the URL, credentials and network access"
        ) from exc


def _expand(spec: str) -> list[Shard]:
    if is_local(spec) and os.path.exists(spec):
        # an existing local path is taken as it is, whatever characters it holds
        filesystem, path = fsspec.filesystem("file"), os.path.abspath(spec)
    else:
        try:
            filesystem, path = fsspec.core.url_to_fs(spec)
        except (ValueError, ImportError) as exc:
            raise InputError(
                f"{spec}: cannot open this location ({one_line(exc)}); check the URL scheme"
            ) from exc
    protocol = filesystem.protocol if isinstance(filesystem.protocol, str) else filesystem.protocol[0]

    def to_url(found_path: str) -> str:
        return found_path if protocol in ("file", "local") else f"{protocol}://{found_path}"

    try:
        # A path that exists is taken literally, so `shard[1].parquet` is a file, not a pattern.
        literal = filesystem.exists(path)
        if _GLOB_CHARS.search(path) and not literal:
            matches = [p for p in filesystem.glob(path) if filesystem.isfile(p)]
            if not matches:
                raise InputError(f"{spec}: the pattern matches no files; check the path and quotes")
            candidates = matches
        elif filesystem.isdir(path):
            candidates = [p for p in filesystem.find(path) if _is_shard_file(p)]
            if not candidates:
                raise InputError(
                    f"{spec}: the directory holds no shard files "
                    f"(looked for {', '.join(SHARD_SUFFIXES[:4])}, ...)"
                )
        elif literal:
            candidates = [path]
        else:
            raise InputError(f"{spec}: no such file or directory; check the path")
        shards = []
        for candidate in candidates:
            size = int(filesystem.size(candidate) or 0)
            url = to_url(candidate)
            shards.append(Shard(url=url, name=_display_name(url), size_bytes=size))
    except InputError:
        raise
    except (OSError, ValueError) as exc:
        raise InputError(f"{spec}: cannot list this location ({one_line(exc)})") from exc
    except Exception as exc:  # remote filesystems raise their own HTTP and client errors
        raise InputError(
            f"{spec}: cannot reach this location ({exc.__class__.__name__}: {one_line(exc)}); "
            "check the URL, credentials and network access"
        ) from exc
    return shards
