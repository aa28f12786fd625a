"""Fuzz the shard readers: any bytes in → documents and skips with reasons, or one InputError.

Run with atheris (coverage-guided; `pip install atheris`):

    .venv/bin/python fuzz/fuzz_readers.py -atheris_runs=200000 fuzz/corpus

or without atheris (random byte mutation of valid seed shards, reproducible with --seed):

    .venv/bin/python fuzz/fuzz_readers.py --mutate 20000 --seed 1

Every input is read as JSON lines (plain, gzip and zstd are detected from the content) and as
parquet. The harness fails on anything a user could not act on: an exception other than
`InputError`, a row read twice or out of order, or a document whose text is not valid,
non-blank UTF-8. Findings become regression tests in tests/test_robustness.py.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import sys
import traceback
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from analyzer.config import ReaderOptions
from analyzer.errors import InputError
from analyzer.readers import read_shard
from analyzer.shards import Shard

OPTIONS = ReaderOptions(batch_size=7, max_document_bytes=4096)
MEMORY = fsspec.filesystem("memory")


def check_reader(data: bytes, kind: str) -> None:
    """Read `data` as a shard of `kind` ('jsonl' or 'parquet'); raise AssertionError on a finding."""
    path = f"/fuzz/input.{kind}"
    MEMORY.pipe(path, data)
    shard = Shard(url=f"memory://{path}", name=f"fuzz.{kind}", size_bytes=len(data))
    seen: list[int] = []
    try:
        for batch in read_shard(shard, OPTIONS):
            rows = batch.documents.column("row_index").to_pylist()
            texts = batch.documents.column("text").to_pylist()
            for text in texts:
                assert isinstance(text, str) and text.strip(), f"unusable text kept: {text!r}"
                text.encode("utf-8")
            for skipped in batch.skipped:
                assert skipped.reason, "skip without a reason"
            seen.extend(sorted(rows + [s.row_index for s in batch.skipped]))
            assert batch.documents.num_rows + len(batch.skipped) <= OPTIONS.batch_size
    except InputError as error:
        assert error.message.startswith(shard.url), f"message does not name the shard: {error.message}"
        assert error.message.isprintable(), f"message is not one printable line: {error.message!r}"
        return
    assert seen == list(range(len(seen))), f"rows read twice or out of order: {seen[:20]}"
    if kind == "jsonl":
        assert_stream_complete(data)


def assert_stream_complete(data: bytes) -> None:
    """Differential check: a compressed shard read without error must be a complete stream."""
    if data.startswith(b"\x1f\x8b"):
        gzip.decompress(data)  # raises on a truncated or corrupt stream the reader accepted
    elif data.startswith(b"\x28\xb5\x2f\xfd"):
        remaining = data
        while remaining:
            decompressor = zstandard.ZstdDecompressor().decompressobj()
            decompressor.decompress(remaining)
            assert decompressor.eof, "reader accepted a zstd stream that ends inside a frame"
            remaining = decompressor.unused_data


def one_input(data: bytes) -> None:
    for kind in ("jsonl", "parquet"):
        check_reader(data, kind)


def seed_corpus() -> list[bytes]:
    """Small valid shards of every format, the starting points for mutation."""
    lines = [
        json.dumps(
            {"id": f"d{i}", "text": f"doc {i} about bonds", "url": f"http://h{i}.x/", "token_count": 12}
        )
        for i in range(12)
    ]
    lines += ['{"text": "caf\\u00e9 \\ud83d\\ude00"}', '{"metadata": {"url": "http://m.x"}, "text": "m"}']
    plain = ("\n".join(lines) + "\n").encode()
    seeds = [plain, gzip.compress(plain), zstandard.ZstdCompressor().compress(plain)]
    for table in (
        pa.table({"id": [f"p{i}" for i in range(20)], "text": [f"row {i} text" for i in range(20)]}),
        pa.table({"text": pa.array([b"bin", b"\xff", None], type=pa.binary())}),
    ):
        for compression in ("zstd", "snappy", "none"):
            sink = io.BytesIO()
            pq.write_table(table, sink, row_group_size=6, compression=compression)
            seeds.append(sink.getvalue())
    return seeds


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to eight random edits: flip, overwrite, insert, delete, truncate or splice."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not buffer:
            buffer.extend(rng.randbytes(rng.randint(1, 16)))
            continue
        position = rng.randrange(len(buffer))
        choice = rng.random()
        if choice < 0.3:
            buffer[position] ^= 1 << rng.randrange(8)
        elif choice < 0.5:
            buffer[position] = rng.choice([0, 0xFF, 0x7F, 0x80, ord("\n"), ord('"'), ord("{")])
        elif choice < 0.65:
            buffer[position:position] = rng.randbytes(rng.randint(1, 8))
        elif choice < 0.8:
            del buffer[position : position + rng.randint(1, 16)]
        elif choice < 0.85:
            del buffer[position:]
        elif choice < 0.9:  # long runs: deep nesting, huge numbers, long lines
            buffer[position:position] = rng.choice(b"1[{a\\ ").to_bytes(1, "big") * rng.randint(10, 6000)
        else:
            start = rng.randrange(len(buffer))
            buffer[position:position] = buffer[start : start + rng.randint(1, 64)]
    return bytes(buffer)


def run_mutation(iterations: int, seed: int, findings_dir: Path) -> int:
    """Hypothesis-free fallback: mutate the seeds; save every finding and return how many."""
    rng = random.Random(seed)
    seeds = seed_corpus()
    findings = 0
    for iteration in range(iterations):
        data = mutate(rng.choice(seeds), rng)
        try:
            one_input(data)
        except Exception:  # noqa: BLE001 - a fuzzer reports every failure
            findings += 1
            findings_dir.mkdir(parents=True, exist_ok=True)
            target = findings_dir / f"finding-{seed}-{iteration}.bin"
            target.write_bytes(data)
            print(f"FINDING {target}:\n{traceback.format_exc(limit=3)}", file=sys.stderr)
    return findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--mutate", type=int, default=0, help="run N random mutations instead of atheris")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--findings", type=Path, default=Path("fuzz/findings"))
    parser.add_argument("--write-seeds", type=Path, default=None, help="write the seed corpus and exit")
    known, rest = parser.parse_known_args()
    if known.write_seeds is not None:
        known.write_seeds.mkdir(parents=True, exist_ok=True)
        for index, data in enumerate(seed_corpus()):
            (known.write_seeds / f"seed-{index}").write_bytes(data)
        return
    if known.mutate:
        found = run_mutation(known.mutate, known.seed, known.findings)
        print(f"{known.mutate} inputs, {found} findings")
        sys.exit(1 if found else 0)
    import atheris

    atheris.instrument_all()
    atheris.Setup([sys.argv[0], *rest], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
