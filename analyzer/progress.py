"""Console progress for long runs: documents/s, MB/s and ETA, from the shard tasks' ticks."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from analyzer.shard_output import ShardAccounting
from analyzer.shard_task import ProgressTick
from analyzer.shards import Shard


class RunProgress:
    """Tracks every shard's fraction done (weighted by file size) and renders one live line."""

    def __init__(self, shards: list[Shard], console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled
        self._weights = {s.key: max(s.size_bytes, 1) for s in shards}
        self._total_weight = float(sum(self._weights.values())) or 1.0
        self._fraction = dict.fromkeys(self._weights, 0.0)
        self._shards_total = len(shards)
        self._shards_finished = 0
        self.docs = 0
        self.text_bytes = 0
        self._started = time.perf_counter()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> RunProgress:
        self._started = time.perf_counter()
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]tagging"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
                disable=not self.console.is_terminal,
            )
            self._progress.start()
            self._task = self._progress.add_task("tagging", total=1.0, status="starting")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._refresh()
            self._progress.stop()

    @property
    def elapsed(self) -> float:
        return max(time.perf_counter() - self._started, 1e-9)

    @property
    def overall_fraction(self) -> float:
        done = sum(self._weights[key] * fraction for key, fraction in self._fraction.items())
        return min(done / self._total_weight, 1.0)

    def status_line(self) -> str:
        elapsed = self.elapsed
        fraction = self.overall_fraction
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else float("nan")
        eta_text = "?" if eta != eta else f"{eta:,.0f}s"
        return (
            f"{self.docs:,} docs · {self.docs / elapsed:,.0f} docs/s · "
            f"{self.text_bytes / 1e6 / elapsed:,.2f} MB/s · "
            f"shards {self._shards_finished}/{self._shards_total} · ETA {eta_text}"
        )

    def on_tick(self, tick: ProgressTick) -> None:
        self.docs += tick.docs
        self.text_bytes += tick.text_bytes
        if tick.shard_key in self._fraction:
            self._fraction[tick.shard_key] = max(self._fraction[tick.shard_key], tick.fraction_done)
        self._refresh()

    def on_shard_finished(self, accounting: ShardAccounting) -> None:
        self._shards_finished += 1
        self._fraction[accounting.key] = 1.0
        if not (self._progress is not None and self.console.is_terminal) and self.enabled:
            verdict = accounting.status if accounting.status != "failed" else f"FAILED: {accounting.error}"
            print(
                f"[{self._shards_finished}/{self._shards_total}] {accounting.shard}: "
                f"{accounting.docs_read:,} read, {accounting.docs_skipped:,} skipped, {verdict} · "
                f"{self.status_line()}",
                file=sys.stderr,
                flush=True,
            )
        self._refresh()

    def _refresh(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=self.overall_fraction, status=self.status_line())
