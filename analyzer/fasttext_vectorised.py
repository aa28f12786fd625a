"""fastText classifier inference re-done as array operations over a whole batch of documents.

A fastText classifier with `wordNgrams 1` sees a document as a bag of tokens: its hidden vector is the
mean of the input-matrix rows of every token's word id and character n-grams, plus one end-of-line
token. The sum of rows (and how many) per distinct token is therefore a fixed property of the token,
and the rows of a batch reduce to: split the bytes on fastText's delimiters, hash every token, look the
hash up in a table of per-token sums, and add the sums per document.

Why not call fastText: its C++ prediction reads a line one character at a time, builds a string per
token, looks each up in a 30-million-slot word table and recomputes the n-grams of an unknown word at
every occurrence. Here each step runs once per batch over arrays, an unknown word's n-grams are hashed
once per process, and the probabilities equal fastText's within 2e-5 (float32 sums in another order;
tests/test_fasttext_vectorised.py checks it on generated text, `make bench` measures both engines side
by side).

Supported: softmax or one-vs-all loss, `wordNgrams 1`, not quantized. `VectorisedFastText.supports`
says whether a model qualifies; callers fall back to fastText's own `predict` otherwise.

Lexicon markers (analyzer/lexicon.py) fold in the same way: the markers a line gets are a sum over its
tokens, so each distinct token's sum and count include the rows of the markers it adds, and a line
prepared *without* the markers gives the probabilities fastText gives for the annotated line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzer.segment_hashing import byte_runs, segment_hashes

if TYPE_CHECKING:
    from analyzer.lexicon import DomainLexicon

FNV_OFFSET = np.uint32(2166136261)
FNV_PRIME = np.uint32(16777619)
"""fastText's Dictionary::hash is 32-bit FNV-1a over the bytes, each byte sign-extended first."""

DELIMITER_BYTES = b" \n\r\t\v\f\x00"
"""The bytes fastText's readWord splits on."""

IS_DELIMITER = np.zeros(256, dtype=bool)
IS_DELIMITER[list(DELIMITER_BYTES)] = True

EOS = "</s>"
LABEL_PREFIX = b"__label__"
BOW, EOW = ord("<"), ord(">")
NEWLINE = ord("\n")

MAX_BATCH_BYTES = 4_000_000
"""Documents are processed in groups of about this many bytes: the per-byte arrays are 8x larger."""

NGRAM_PIECE_BYTES = 64_000
"""Unknown or vocabulary words get their n-grams summed in pieces of about this many bytes."""

MAX_CACHED_UNKNOWN_TOKENS = 1_000_000
"""Bound on remembered unknown tokens (~70 bytes each at dim 8, twice that while the arrays grow);
a batch that finds more starts the cache again from the vocabulary (one batch may overshoot it)."""


SIGMOID_TABLE_SIZE = 512
MAX_SIGMOID = 8.0
SIGMOID_TABLE = (
    1.0
    / (
        1.0
        + np.exp(-(np.arange(SIGMOID_TABLE_SIZE + 1) * 2 * MAX_SIGMOID / SIGMOID_TABLE_SIZE - MAX_SIGMOID))
    )
).astype(np.float32)
"""fastText's one-vs-all predict reads sigmoids from this 513-entry table, so its probabilities step."""


def fasttext_sigmoid(scores: np.ndarray) -> np.ndarray:
    """fastText's table sigmoid: 0 below -8, 1 above 8, else the table entry at the floor of the position."""
    position = ((scores + MAX_SIGMOID) * SIGMOID_TABLE_SIZE / MAX_SIGMOID / 2).astype(np.int64)
    looked_up = SIGMOID_TABLE[np.clip(position, 0, SIGMOID_TABLE_SIZE)].astype(np.float64)
    result: np.ndarray = np.where(scores < -MAX_SIGMOID, 0.0, np.where(scores > MAX_SIGMOID, 1.0, looked_up))
    return result


def token_bounds(buffer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return start and end offsets of the maximal runs of non-delimiter bytes in `buffer`."""
    return byte_runs(~IS_DELIMITER[buffer])


def token_hashes(buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Return a 64-bit hash of each token's bytes, never 0 (which marks an empty table slot)."""
    hashes = segment_hashes(buffer, starts, ends)
    hashes[hashes == 0] = 1
    return hashes


def gather_segments(
    buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the segments' bytes, each wrapped in '<' and '>' as fastText does, and their end offsets."""
    lengths = ends - starts
    wrapped_ends = np.cumsum(lengths + 2)
    wrapped = np.empty(int(wrapped_ends[-1]) if len(wrapped_ends) else 0, dtype=np.uint8)
    wrapped_starts = wrapped_ends - lengths - 2
    wrapped[wrapped_starts] = BOW
    wrapped[wrapped_ends - 1] = EOW
    inner = np.ones(len(wrapped), dtype=bool)
    inner[wrapped_starts] = False
    inner[wrapped_ends - 1] = False
    source = np.arange(len(wrapped))[inner] - np.repeat(wrapped_starts + 1 - starts, lengths)
    wrapped[inner] = buffer[source]
    return wrapped, wrapped_ends


def decoded_segments(buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    """The segments buffer[starts[i]:ends[i]] as str (undecodable bytes as surrogate escapes).

    One decode of all of them (`gather_segments` with newlines for its '<' and '>') rather than one
    per segment, which took a sixth of a cold prediction pass; segments never hold a newline, and
    a newline cannot split a UTF-8 sequence, so each decodes as it would alone.
    """
    if not len(starts):
        return []
    wrapped, wrapped_ends = gather_segments(buffer, starts, ends)
    wrapped[wrapped_ends - 1] = NEWLINE
    wrapped[wrapped_ends - (ends - starts) - 2] = NEWLINE
    # "\na\n\nb\n" splits into ["", "a", "", "b", ""]: the segments are every second piece
    return wrapped.tobytes().decode("utf-8", "surrogateescape").split("\n")[1::2]


def ngram_row_sums(
    matrix: np.ndarray,
    wrapped: np.ndarray,
    wrapped_ends: np.ndarray,
    minn: int,
    maxn: int,
    bucket: int,
    offset: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per wrapped word, the sum of `matrix` rows of its character n-grams and how many there are.

    Mirrors fastText's Dictionary::computeSubwords: n-grams of `minn`..`maxn` UTF-8 characters,
    hashed over their bytes, except a lone '<' or '>'; row = hash % bucket + offset (the word count).
    `matrix` must end with an all-zero row, which n-grams running past their word's end read.

    Every character start is carried through every layer n (no compaction): the hash of an
    (n+1)-gram continues that of the n-gram at the same start, and dense array passes cost less
    than dropping the starts that ran out of characters.
    """
    n_words = len(wrapped_ends)
    if maxn <= 0 or n_words == 0:
        return np.zeros((n_words, matrix.shape[1]), dtype=np.float64), np.zeros(n_words, dtype=np.float64)
    zero_row = len(matrix) - 1
    word_lengths = np.diff(wrapped_ends, prepend=0)
    ascii_only = not (wrapped >= 0x80).any()
    if ascii_only:
        char_starts = np.arange(len(wrapped))
        word_of_char = np.repeat(np.arange(n_words), word_lengths)
    else:
        char_starts = np.flatnonzero((wrapped & 0xC0) != 0x80)
        word_of_char = np.searchsorted(wrapped_ends, char_starts, side="right")
    # past the buffer's end, boundaries beyond any word's end make longer n-grams fall out by themselves
    boundaries = np.concatenate([char_starts, [len(wrapped)], np.full(maxn, len(wrapped) + 1)])
    padded = np.concatenate(
        [wrapped.view(np.int8).astype(np.int32).view(np.uint32), np.zeros(4 * maxn, np.uint32)]
    )
    word_end = wrapped_ends[word_of_char]
    n_chars = len(char_starts)
    totals = np.zeros((n_chars, matrix.shape[1]), dtype=np.float32)
    counts = np.zeros(n_chars, dtype=np.int64)
    hashes = np.full(n_chars, FNV_OFFSET, dtype=np.uint32)
    for n in range(1, maxn + 1):
        end = boundaries[n : n + n_chars]
        if ascii_only:  # the n-th character is the byte n - 1 places on
            hashes = (hashes ^ padded[n - 1 : n - 1 + n_chars]) * FNV_PRIME
        else:
            begin = boundaries[n - 1 : n - 1 + n_chars]
            widths = end - begin
            for step in range(int(min(widths.max(), 4))):  # 1 to 4 bytes per UTF-8 character
                stepped = (hashes ^ padded[np.minimum(begin + step, len(padded) - 1)]) * FNV_PRIME
                hashes = np.where(step < widths, stepped, hashes)
        if n < minn:
            continue
        valid = end <= word_end
        if n == 1:  # fastText skips the bare '<' and '>'
            word_start = word_end - word_lengths[word_of_char]
            valid &= (char_starts != word_start) & (end != word_end)
        rows = np.where(valid, hashes.astype(np.int64) % bucket + offset, zero_row)
        totals += np.take(matrix, rows, axis=0)
        counts += valid
    word_first_char = np.searchsorted(char_starts, wrapped_ends - word_lengths)
    sums = np.add.reduceat(totals, word_first_char, axis=0).astype(np.float64)
    return sums, np.add.reduceat(counts, word_first_char).astype(np.float64)


class TokenTable:
    """Open-addressing hash table from 64-bit token hashes to row numbers, probed for whole arrays."""

    def __init__(self, capacity: int) -> None:
        self.keys, self.values = self.empty_slots(capacity)
        self.count = 0

    @staticmethod
    def empty_slots(capacity: int) -> tuple[np.ndarray, np.ndarray]:
        size = 1 << max(10, int(2 * capacity - 1).bit_length())  # load factor <= 0.5
        return np.zeros(size, dtype=np.uint64), np.full(size, -1, dtype=np.int64)

    @property
    def shift(self) -> np.uint64:
        return np.uint64(64 - (len(self.keys).bit_length() - 1))

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Return the row of each hash, -1 where it is absent."""
        result = np.full(len(hashes), -1, dtype=np.int64)
        pending = np.arange(len(hashes))
        slots = (hashes >> self.shift).astype(np.int64)
        mask = len(self.keys) - 1
        while len(pending):
            keys = self.keys[slots]
            found = keys == hashes[pending]
            result[pending[found]] = self.values[slots[found]]
            again = ~found & (keys != 0)
            pending = pending[again]
            slots = (slots[again] + 1) & mask
        return result

    def insert(self, hashes: np.ndarray, values: np.ndarray) -> None:
        """Insert distinct hashes that are not in the table yet."""
        if self.count + len(hashes) > len(self.keys) // 2:
            self.grow(self.count + len(hashes))
        mask = len(self.keys) - 1
        slots = (hashes >> self.shift).astype(np.int64)
        pending = np.arange(len(hashes))
        while len(pending):
            free = self.keys[slots] == 0
            # of several pending keys aiming at one free slot, the first takes it; the rest probe on
            _, first = np.unique(slots, return_index=True)
            winner = np.zeros(len(pending), dtype=bool)
            winner[first] = True
            take = free & winner
            self.keys[slots[take]] = hashes[pending[take]]
            self.values[slots[take]] = values[pending[take]]
            keep = ~take
            pending = pending[keep]
            slots = slots[keep]
            slots = np.where(self.keys[slots] != 0, (slots + 1) & mask, slots)
        self.count += len(hashes)

    def grow(self, capacity: int) -> None:
        occupied = self.keys != 0
        keys, values = self.keys[occupied], self.values[occupied]
        self.keys, self.values = self.empty_slots(capacity)
        self.count = 0
        self.insert(keys, values)

    def __len__(self) -> int:
        return self.count


def fasttext_loss(ft_model: Any) -> str:
    """The loss a loaded fastText model was trained with: "softmax", "ova", "hs" or "ns"."""
    return str(ft_model.f.getArgs().loss).rsplit(".", 1)[-1]


class VectorisedFastText:
    """Probabilities of a fastText classifier for whole batches of prepared lines, equal to its `predict`.

    Build with `from_fasttext(model)`; `probabilities(lines)` returns one row per line, columns in the
    model's label order, each row summing to 1 after fastText's own +1e-5 per label.
    """

    def __init__(
        self,
        input_matrix: np.ndarray,
        output_matrix: np.ndarray,
        words: Sequence[str],
        minn: int,
        maxn: int,
        bucket: int,
        loss: str,
        lexicon: DomainLexicon | None = None,
    ) -> None:
        # the input matrix with an all-zero last row: what n-grams past their word's end look up
        self.ngram_matrix = np.zeros((len(input_matrix) + 1, input_matrix.shape[1]), dtype=np.float32)
        self.ngram_matrix[:-1] = input_matrix
        self.dim = int(input_matrix.shape[1])
        self.output_matrix = np.asarray(output_matrix, dtype=np.float64)
        self.minn, self.maxn, self.bucket, self.loss = minn, maxn, bucket, loss
        self.n_words = len(words)
        self.vocabulary_sums, self.vocabulary_counts, vocabulary_hashes = self.vocabulary_rows(words)
        self.vocabulary_hashes = vocabulary_hashes
        self.eos_row = list(words).index(EOS) + 1 if EOS in words else None
        self.lexicon = lexicon
        self.marker_sums = np.zeros((0, self.dim), dtype=np.float64)
        self.marker_counts = np.zeros(0, dtype=np.float64)
        if lexicon is not None:
            self.marker_sums, self.marker_counts = self.token_rows(
                [marker.encode("utf-8") for marker in lexicon.markers]
            )
            vocabulary_markers = self.lexicon_markers(words)
            if self.eos_row is not None:  # fastText's own end-of-line token adds no markers
                vocabulary_markers[self.eos_row] = 0.0
            self.vocabulary_sums += vocabulary_markers @ self.marker_sums
            self.vocabulary_counts += vocabulary_markers @ self.marker_counts
        self.reset_cache()

    @staticmethod
    def supports(ft_model: Any) -> bool:
        """True for the models this module reproduces exactly; others use fastText's own predict."""
        args = ft_model.f.getArgs()
        return (
            not ft_model.is_quantized()
            and args.wordNgrams == 1
            and fasttext_loss(ft_model) in {"softmax", "ova"}
        )

    @classmethod
    def from_fasttext(cls, ft_model: Any, lexicon: DomainLexicon | None = None) -> VectorisedFastText:
        """The engine for a loaded fastText model; with `lexicon`, for lines annotated by it."""
        args = ft_model.f.getArgs()
        return cls(
            ft_model.get_input_matrix(),
            ft_model.get_output_matrix(),
            # a foreign model may hold words that are not UTF-8: keep their bytes (encoded back below)
            ft_model.get_words(on_unicode_error="surrogateescape"),
            args.minn,
            args.maxn,
            args.bucket,
            fasttext_loss(ft_model),
            lexicon,
        )

    def token_rows(self, tokens: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Sum and count of the rows fastText reads for each token: its vocabulary entry (word row
        plus n-grams) or, outside the vocabulary, its n-grams alone."""
        buffer = np.frombuffer(b"\n".join(tokens) + b"\n", dtype=np.uint8)
        lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        ends = np.cumsum(lengths + 1) - 1
        starts = ends - lengths
        sums, counts = self.ngram_sums(buffer, starts, ends)
        # a handful of tokens (the markers): one pass over the vocabulary's hashes each
        for index, token_hash in enumerate(token_hashes(buffer, starts, ends)):
            found = np.flatnonzero(self.vocabulary_hashes == token_hash)
            if len(found):
                row = int(found[0]) + 1  # row 0 of the vocabulary tables is the empty token
                sums[index], counts[index] = self.vocabulary_sums[row], self.vocabulary_counts[row]
        return sums, counts

    def lexicon_markers(self, tokens: Sequence[str]) -> np.ndarray:
        """Markers per domain that each token adds (row 0 is the empty token, rows 1.. the tokens)."""
        assert self.lexicon is not None
        markers = np.zeros((len(tokens) + 1, len(self.lexicon.domains)), dtype=np.float64)
        for index, positions in self.lexicon.token_hits(tokens):
            for position in positions:
                markers[index + 1, position] += 1.0
        return markers

    def vocabulary_rows(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per vocabulary word: sum of its own row and its n-gram rows, their count, and its token hash.

        Row 0 of the returned tables is an all-zero "token" for labels and other ignored tokens.
        """
        encoded = [word.encode("utf-8", "surrogateescape") for word in words]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        ends = np.cumsum(lengths + 1) - 1
        starts = ends - lengths
        buffer = np.frombuffer(b"\n".join(encoded) + b"\n", dtype=np.uint8)
        sums = np.zeros((len(words) + 1, self.dim), dtype=np.float64)
        counts = np.zeros(len(words) + 1, dtype=np.float64)
        sums[1:] = self.ngram_matrix[: len(words)]
        counts[1:] = 1.0
        has_ngrams = np.array([word != EOS for word in words], dtype=bool)
        ngram_words = np.flatnonzero(has_ngrams)
        if len(ngram_words):
            ngram_sums, ngram_counts = self.ngram_sums(buffer, starts[ngram_words], ends[ngram_words])
            sums[1 + ngram_words] += ngram_sums
            counts[1 + ngram_words] += ngram_counts
        return sums, counts, token_hashes(buffer, starts, ends)

    def ngram_sums(
        self, buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sum and count of the character n-gram rows of each token buffer[starts[i]:ends[i]].

        ASCII tokens and the others go in separate calls (an all-ASCII buffer takes the fast path),
        each in pieces of about NGRAM_PIECE_BYTES: the per-character arrays are ~100x the bytes.
        """
        sums = np.zeros((len(starts), self.dim), dtype=np.float64)
        counts = np.zeros(len(starts), dtype=np.float64)
        high_bytes = np.concatenate([[0], np.cumsum(buffer >= 0x80)])
        is_ascii = high_bytes[ends] == high_bytes[starts]
        for group in (np.flatnonzero(is_ascii), np.flatnonzero(~is_ascii)):
            piece_of = np.cumsum(ends[group] - starts[group] + 2) // NGRAM_PIECE_BYTES
            for piece in np.split(group, np.flatnonzero(np.diff(piece_of)) + 1):
                if len(piece):
                    wrapped, wrapped_ends = gather_segments(buffer, starts[piece], ends[piece])
                    sums[piece], counts[piece] = ngram_row_sums(
                        self.ngram_matrix,
                        wrapped,
                        wrapped_ends,
                        self.minn,
                        self.maxn,
                        self.bucket,
                        self.n_words,
                    )
        return sums, counts

    def reset_cache(self) -> None:
        """Forget the unknown tokens seen so far (the vocabulary stays)."""
        self.table = TokenTable(len(self.vocabulary_hashes) + 1024)
        self.table.insert(self.vocabulary_hashes, np.arange(1, len(self.vocabulary_hashes) + 1))
        # float32 like fastText's own sums; rows past n_rows are spare capacity
        self.sums = self.vocabulary_sums.astype(np.float32)
        self.counts = self.vocabulary_counts.copy()
        self.n_rows = len(self.vocabulary_sums)

    def add_unknown_tokens(
        self, buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray, hashes: np.ndarray
    ) -> int:
        """Compute and remember the n-gram sums of distinct tokens missing from the table; return the
        row of the first (the others follow in order)."""
        sums = np.zeros((len(hashes), self.dim), dtype=np.float64)
        counts = np.zeros(len(hashes), dtype=np.float64)
        lengths = ends - starts
        is_label = np.zeros(len(hashes), dtype=bool)
        long_enough = np.flatnonzero(lengths >= len(LABEL_PREFIX))
        if len(long_enough):
            prefix = buffer[starts[long_enough, None] + np.arange(len(LABEL_PREFIX))]
            is_label[long_enough] = (prefix == np.frombuffer(LABEL_PREFIX, dtype=np.uint8)).all(axis=1)
        words = np.flatnonzero(~is_label)  # fastText drops label-like tokens from a line
        if len(words):
            sums[words], counts[words] = self.ngram_sums(buffer, starts[words], ends[words])
        if self.lexicon is not None and len(words):
            markers = self.lexicon_markers(decoded_segments(buffer, starts[words], ends[words]))[1:]
            sums[words] += markers @ self.marker_sums
            counts[words] += markers @ self.marker_counts
        first_row, end_row = self.n_rows, self.n_rows + len(hashes)
        if end_row > len(self.sums):  # grow by doubling, so appending stays linear overall
            capacity = max(end_row, 2 * len(self.sums))
            self.sums = np.concatenate(
                [self.sums[:first_row], np.empty((capacity - first_row, sums.shape[1]), np.float32)]
            )
            self.counts = np.concatenate([self.counts[:first_row], np.empty(capacity - first_row)])
        self.sums[first_row:end_row] = sums
        self.counts[first_row:end_row] = counts
        self.table.insert(hashes, np.arange(first_row, end_row))
        self.n_rows = end_row
        return first_row

    def probabilities(self, lines: Sequence[str], renormalise: bool = True) -> np.ndarray:
        """Return fastText's label probabilities for lines already prepared for the model, rows
        renormalised to sum to 1; with `renormalise` False, fastText's own outputs (a one-vs-all
        model's independent sigmoids)."""
        n_labels = self.output_matrix.shape[0]
        result = np.empty((len(lines), n_labels), dtype=np.float64)
        start, size = 0, 0
        encoded = [line.encode("utf-8", "surrogatepass") for line in lines]
        for index, line in enumerate(encoded):
            size += len(line) + 1
            if size >= MAX_BATCH_BYTES or index == len(encoded) - 1:
                result[start : index + 1] = self.batch_probabilities(encoded[start : index + 1], renormalise)
                start, size = index + 1, 0
        return result

    def cut_at_end_of_line_tokens(self, rows: np.ndarray, first_token: np.ndarray) -> None:
        """Zero the rows of a line from its first literal '</s>' token on, in place.

        fastText stops reading a line at that token (it is its end-of-line marker), so the words
        after it are never seen; the marker itself is the end-of-line row every line gets anyway.
        """
        marker_tokens = np.flatnonzero(rows == self.eos_row)
        if not len(marker_tokens):
            return
        line_of_marker = np.searchsorted(first_token, marker_tokens, side="right") - 1
        lines_cut, first_marker = np.unique(line_of_marker, return_index=True)
        line_ends = np.append(first_token[1:], len(rows))[lines_cut]
        cut_starts = marker_tokens[first_marker]
        cut = np.repeat(cut_starts, line_ends - cut_starts) + (
            np.arange(int((line_ends - cut_starts).sum()))
            - np.repeat(np.cumsum(line_ends - cut_starts) - (line_ends - cut_starts), line_ends - cut_starts)
        )
        rows[cut] = 0

    def batch_probabilities(self, lines: Sequence[bytes], renormalise: bool = True) -> np.ndarray:
        buffer = np.frombuffer(b"\n".join(lines) + b"\n", dtype=np.uint8)
        line_lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
        line_starts = np.cumsum(line_lengths + 1) - line_lengths - 1
        starts, ends = token_bounds(buffer)
        hashes = token_hashes(buffer, starts, ends)
        if self.table.count - len(self.vocabulary_hashes) > MAX_CACHED_UNKNOWN_TOKENS:
            # before the lookup: rows found in a cache that is then emptied would point nowhere
            self.reset_cache()
        rows = self.table.lookup(hashes)
        unknown = np.flatnonzero(rows < 0)
        if len(unknown):
            distinct, first, inverse = np.unique(hashes[unknown], return_index=True, return_inverse=True)
            where = unknown[first]
            first_new_row = self.add_unknown_tokens(buffer, starts[where], ends[where], distinct)
            rows[unknown] = first_new_row + inverse
        # tokens of line i are first_token[i]:first_token[i + 1]; an extra zero row keeps reduceat in range
        first_token = np.searchsorted(starts, line_starts)
        if self.eos_row is not None:
            self.cut_at_end_of_line_tokens(rows, first_token)
        token_sums = np.take(self.sums, np.append(rows, 0), axis=0)
        token_counts = np.take(self.counts, np.append(rows, 0))
        hidden = np.add.reduceat(token_sums, first_token, axis=0).astype(np.float64)
        counts = np.add.reduceat(token_counts, first_token)
        empty = first_token == np.append(first_token[1:], len(rows))
        hidden[empty] = 0.0
        counts[empty] = 0.0
        if self.eos_row is not None:  # fastText's predict ends every line with the end-of-line token
            hidden += self.sums[self.eos_row]
            counts += self.counts[self.eos_row]
        no_rows = counts == 0
        hidden /= np.where(no_rows, 1.0, counts)[:, None]
        scores = hidden @ self.output_matrix.T
        if self.loss == "ova":
            probs = fasttext_sigmoid(scores)
        else:
            scores -= scores.max(axis=1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=1, keepdims=True)
        probs += 1e-5  # fastText returns exp(log(p + 1e-5))
        # fastText predicts nothing for a line without features; our callers read that as uniform
        probs[no_rows] = 1.0 / probs.shape[1]
        if not renormalise:
            return probs
        normalised: np.ndarray = probs / probs.sum(axis=1, keepdims=True)
        return normalised
