"""Executors schedule shard tasks and nothing else: the local process pool today, Ray later.

An executor takes the shards and a `RunConfig`, runs `ShardProcessor.process` on each somewhere,
forwards progress ticks to a callback, and yields each shard's accounting as it finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from analyzer.config import RunConfig
from analyzer.shard_output import ShardAccounting
from analyzer.shard_task import ProgressTick
from analyzer.shards import Shard


class Executor(Protocol):
    """Anything that can run shard tasks; must yield exactly one accounting per shard."""

    def run(
        self, shards: list[Shard], config: RunConfig, on_tick: Callable[[ProgressTick], None]
    ) -> Iterator[ShardAccounting]: ...
