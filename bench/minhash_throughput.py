"""MinHash tagger throughput on the shared corpus: MB of text per CPU-second, per backend.

Usage: .venv/bin/python bench/minhash_throughput.py [--data ../shared/data] [--repeats 3]
       [--out bench/results/minhash_throughput.json]

Times `MinHashTagger.tag` (content hash + signature + band keys + shingle counts) over the
corpus in batches of 512 documents (the reader's default), best of --repeats, in CPU seconds of this
one process (so the figure is per core), for the batched numpy and rensa backends, and for the
per-document loop the tagger used before (word_hashes → shingle_hashes → signature per text; with
today's word_hashes, which is itself batched, so this row is not the old code's figure).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from dedup_quality import read_corpus  # noqa: E402

from analyzer.config import MinHashOptions  # noqa: E402
from analyzer.taggers.minhash import MinHashTagger, content_hash  # noqa: E402
from analyzer.taggers.minhash_kernels import (  # noqa: E402
    band_keys,
    permutation_parameters,
    shingle_hashes,
    signature,
    word_hashes,
)


def per_document(options: MinHashOptions) -> Callable[[pa.RecordBatch], object]:
    """The previous tagger's loop: one numpy pipeline per document."""
    multipliers, offsets = permutation_parameters(options.num_perm, options.seed)

    def tag(batch: pa.RecordBatch) -> object:
        texts = batch.column("text").to_pylist()
        hashes = np.array([content_hash(text) for text in texts], dtype=np.uint64)
        keys = np.empty((len(texts), options.bands), dtype=np.uint64)
        for index, text in enumerate(texts):
            sig = signature(shingle_hashes(word_hashes(text), options.ngram), multipliers, offsets)
            keys[index] = band_keys(sig, options.bands, options.rows)
        return hashes, keys

    return tag


def best_cpu_seconds(work: Callable[[], object], repeats: int) -> float:
    work()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "minhash_throughput.json")
    args = parser.parse_args()
    _, texts = read_corpus(args.data / "corpus")
    batches = [pa.RecordBatch.from_pydict({"text": texts[i : i + 512]}) for i in range(0, len(texts), 512)]
    megabytes = sum(len(text.encode("utf-8")) for text in texts) / 1e6
    options = MinHashOptions()
    results = {}
    candidates: dict[str, Callable[[pa.RecordBatch], object]] = {
        "per-document kernels": per_document(options)
    }
    for backend in ("numpy", "rensa"):
        candidates[f"batched {backend}"] = MinHashTagger(MinHashOptions(backend=backend)).tag
    for name, tag in candidates.items():
        seconds = best_cpu_seconds(lambda tag=tag: [tag(batch) for batch in batches], args.repeats)
        results[name] = {"cpu_seconds": round(seconds, 3), "mb_per_cpu_second": round(megabytes / seconds, 1)}
        print(
            f"{name:30} {megabytes / seconds:6.1f} MB/s per core ({seconds:.2f} CPU s for {megabytes:.1f} MB)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"documents": len(texts), "megabytes": round(megabytes, 2), "options": str(options), **results},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
