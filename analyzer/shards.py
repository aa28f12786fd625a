"""Turn what the user typed (paths, globs, directories, fsspec URLs) into a list of shards.

A shard is the unit of work: one input file, read by one task, producing one tags file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import fsspec

from analyzer.errors import InputError

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
    """Expand every input into shard files, sorted and deduplicated; raise InputError if none."""
    if not inputs:
        raise InputError("no input given: pass shard paths, globs, directories or URLs")
    found: dict[str, Shard] = {}
    for spec in inputs:
        for shard in _expand(spec):
            found.setdefault(shard.url, shard)
    return sorted(found.values(), key=lambda shard: shard.url)


def _expand(spec: str) -> list[Shard]:
    try:
        filesystem, path = fsspec.core.url_to_fs(spec)
    except (ValueError, ImportError) as exc:
        raise InputError(f"{spec}: cannot open this location ({exc}); check the URL scheme") from exc
    protocol = filesystem.protocol if isinstance(filesystem.protocol, str) else filesystem.protocol[0]

    def to_url(found_path: str) -> str:
        return found_path if protocol in ("file", "local") else f"{protocol}://{found_path}"

    try:
        if _GLOB_CHARS.search(path):
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
        elif filesystem.exists(path):
            candidates = [path]
        else:
            raise InputError(f"{spec}: no such file or directory; check the path")
    except InputError:
        raise
    except (OSError, ValueError) as exc:
        raise InputError(f"{spec}: cannot list this location ({exc})") from exc
    shards = []
    for candidate in candidates:
        size = int(filesystem.size(candidate) or 0)
        url = to_url(candidate)
        shards.append(Shard(url=url, name=_display_name(url), size_bytes=size))
    return shards
