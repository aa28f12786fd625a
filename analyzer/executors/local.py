"""Run shard tasks in this process (one worker) or in a local process pool (several)."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing.context import BaseContext
from typing import Any

from analyzer.config import RunConfig
from analyzer.shard_output import ShardAccounting
from analyzer.shard_task import ProgressTick, ShardProcessor
from analyzer.shards import Shard

_worker_processor: ShardProcessor | None = None
_worker_ticks: Any = None


def _start_worker(config: RunConfig, ticks: Any) -> None:
    """Pool initializer: load the model and tokenizer once per worker process."""
    global _worker_processor, _worker_ticks
    _worker_processor = ShardProcessor(config)
    _worker_ticks = ticks


def _process_in_worker(shard: Shard) -> ShardAccounting:
    assert _worker_processor is not None, "worker initializer did not run"
    return _worker_processor.process(shard, _worker_ticks.put)


class LocalExecutor:
    """`workers` processes on this machine; with one worker, no pool and no pickling at all."""

    def __init__(self, workers: int, processor: ShardProcessor | None = None) -> None:
        self.workers = max(1, workers)
        self._processor = processor

    def run(
        self, shards: list[Shard], config: RunConfig, on_tick: Callable[[ProgressTick], None]
    ) -> Iterator[ShardAccounting]:
        if self.workers == 1 or len(shards) <= 1:
            processor = self._processor or ShardProcessor(config)
            for shard in shards:
                yield processor.process(shard, on_tick)
            return
        yield from self._run_pool(shards, config, on_tick)

    def _run_pool(
        self, shards: list[Shard], config: RunConfig, on_tick: Callable[[ProgressTick], None]
    ) -> Iterator[ShardAccounting]:
        # Not plain fork: the parent may already run native thread pools (rensa's rayon, DuckDB),
        # and a forked child that needs them hangs. A fork server is a fresh single-threaded
        # process that imports the pipeline once; workers fork from it and only load the model.
        context: BaseContext
        if "forkserver" in multiprocessing.get_all_start_methods():
            forkserver = multiprocessing.get_context("forkserver")
            forkserver.set_forkserver_preload(["analyzer.shard_task"])
            context = forkserver
        else:
            context = multiprocessing.get_context("spawn")
        ticks = context.Queue()
        workers = min(self.workers, len(shards))
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(config, ticks)
        ) as pool:
            pending: set[Future[ShardAccounting]] = {pool.submit(_process_in_worker, s) for s in shards}
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(ticks, on_tick)
                for future in done:
                    yield future.result()
            _drain(ticks, on_tick)


def _drain(ticks: Any, on_tick: Callable[[ProgressTick], None]) -> None:
    while True:
        try:
            on_tick(ticks.get_nowait())
        except queue.Empty:
            return
