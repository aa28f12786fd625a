"""Domain lexicon features: one marker token per lexicon word, added to the classifier's text.

A lexicon (`classifiers/lexicons/*.yaml`) lists words per domain. `DomainLexicon.annotate` puts, in
front of a normalised line, one `__lex_<domain>__` token for every token of the line that is a
lexicon word of that domain, so fastText learns one weight per marker and every lexicon word shares
it, including words the training data holds rarely or never. The model's sidecar JSON stores the
lexicon it was trained with, so prediction annotates exactly as training did.

Token rules, chosen so that the vectorised engine can fold a token's markers into the token itself
(`marker_counts` per distinct token) and still equal fastText reading the annotated line:
- tokens are fastText's: runs of bytes other than space, \\n, \\r, \\t, \\v, \\f and NUL;
- a token is stripped of surrounding punctuation (`STRIP_CHARS`) and looked up as is;
- tokens starting with `__label__` count for nothing (fastText drops them from a line);
- counting stops at a literal `</s>` token (fastText stops reading a line there).
Markers go in front so that a `</s>` in the text cannot hide them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer import text_normalise
from analyzer.errors import ModelError
from analyzer.fasttext_vectorised import DELIMITER_BYTES, EOS
from analyzer.fasttext_vectorised import LABEL_PREFIX as LABEL_PREFIX_BYTES

STRIP_CHARS = (
    string.punctuation
    + "\u201c\u201d\u2018\u2019\u00ab\u00bb\u201e\u201a\u2039\u203a"
    + "\u2026\u2013\u2014\u00b7\u2022"
)
"""Characters stripped from both ends of a token before the lookup: ASCII punctuation, typographic
quotes, guillemets, ellipsis, en and em dashes, middle dot and bullet."""

OTHER_DELIMITERS = tuple(chr(byte) for byte in DELIMITER_BYTES if byte != ord(" "))
FASTTEXT_DELIMITERS = re.compile(f"[{re.escape(DELIMITER_BYTES.decode('ascii'))}]+")
LABEL_PREFIX = LABEL_PREFIX_BYTES.decode("ascii")


def marker_token(domain: str) -> str:
    """The token added for one lexicon word of `domain`."""
    return f"__lex_{domain}__"


@dataclass(frozen=True)
class DomainLexicon:
    """Words per domain (already normalised) and the lookup from a stripped token to its domains."""

    name: str
    words: Mapping[str, tuple[str, ...]]
    """Domain -> its words, in file order after normalisation and de-duplication."""
    domains: tuple[str, ...] = field(init=False)
    index: Mapping[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        domains = tuple(self.words)
        index: dict[str, list[int]] = {}
        for position, domain in enumerate(domains):
            for word in self.words[domain]:
                index.setdefault(word, []).append(position)
        object.__setattr__(self, "domains", domains)
        object.__setattr__(self, "index", {word: tuple(spots) for word, spots in index.items()})

    def __hash__(self) -> int:
        return hash((self.name, tuple((domain, words) for domain, words in self.words.items())))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], origin: str) -> DomainLexicon:
        """Build from {"name": ..., "domains": {domain: "w1 w2 ..." or [w1, ...]}}; words are
        normalised like the classifier's text (lower case, digits to 0)."""
        name, domains = raw.get("name"), raw.get("domains")
        if not isinstance(name, str) or not isinstance(domains, Mapping) or not domains:
            raise ModelError(f"lexicon {origin} needs a `name` and a non-empty `domains` mapping")
        words: dict[str, tuple[str, ...]] = {}
        for domain, listed in domains.items():
            if not isinstance(domain, str) or not domain or any(char.isspace() for char in domain):
                raise ModelError(
                    f"lexicon {origin}: domain name {domain!r} must be one word (it names a token)"
                )
            items = listed.split() if isinstance(listed, str) else listed
            if not isinstance(items, Sequence) or not all(isinstance(item, str) for item in items):
                raise ModelError(f"lexicon {origin}: domain {domain!r} must list words (a string or a list)")
            spaced = [item for item in items if any(char.isspace() for char in item.strip())]
            if spaced:
                raise ModelError(
                    f"lexicon {origin}: {spaced[0]!r} under {domain!r} holds a space; entries are single "
                    "tokens (write 'interest-rate', or list the words one by one)"
                )
            normalised = (
                text_normalise.normalise_for_classifier(item, None).strip(STRIP_CHARS) for item in items
            )
            words[str(domain)] = tuple(dict.fromkeys(word for word in normalised if word))
        return cls(name, words)

    @classmethod
    def load(cls, path: str | Path) -> DomainLexicon:
        """Read a lexicon YAML file; raise ModelError naming the file when it is missing or malformed."""
        import yaml

        lexicon_path = Path(path)
        try:
            raw = yaml.safe_load(lexicon_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ModelError(f"cannot read lexicon {lexicon_path} ({exc.strerror}); check the path") from exc
        except yaml.YAMLError as exc:
            raise ModelError(f"lexicon {lexicon_path} is not valid YAML ({exc})") from exc
        if not isinstance(raw, Mapping):
            raise ModelError(f"lexicon {lexicon_path} must be a YAML mapping with `name` and `domains`")
        return cls.from_mapping(raw, str(lexicon_path))

    def to_json(self) -> dict[str, Any]:
        """The form stored in a model's sidecar (read back by `from_mapping`)."""
        return {"name": self.name, "domains": {domain: list(words) for domain, words in self.words.items()}}

    @property
    def markers(self) -> tuple[str, ...]:
        """Marker tokens in `domains` order."""
        return tuple(marker_token(domain) for domain in self.domains)

    def token_hits(self, tokens: Sequence[str]) -> list[tuple[int, tuple[int, ...]]]:
        """(index, domain positions) of each fastText token of `tokens` that is a lexicon word: stripped
        of STRIP_CHARS and looked up, except `__label__` tokens (fastText drops them). One pass over
        many tokens, the only place this rule is written (the vectorised engine and `marker_counts`)."""
        lookup, strip = self.index.get, STRIP_CHARS
        return [
            (index, domains)
            for index, token in enumerate(tokens)
            if (domains := lookup(token.strip(strip))) and not token.startswith(LABEL_PREFIX)
        ]

    def marker_counts(self, line: str) -> list[int]:
        """How many marker tokens of each domain `line` gets."""
        counts = [0] * len(self.domains)
        # splitting on the space alone is several times faster than the regex, and suffices for the
        # usual line (normalisation already turned line breaks into spaces)
        plain = not any(delimiter in line for delimiter in OTHER_DELIMITERS)
        tokens = line.split(" ") if plain else FASTTEXT_DELIMITERS.split(line)
        if EOS in tokens:
            tokens = tokens[: tokens.index(EOS)]
        # a line repeats its tokens: look each distinct one up once
        times = Counter(tokens)
        distinct = list(times)
        for index, positions in self.token_hits(distinct):
            for position in positions:
                counts[position] += times[distinct[index]]
        return counts

    def annotate(self, line: str) -> str:
        """Return `line` with its marker tokens in front (unchanged when no token is a lexicon word)."""
        counts = self.marker_counts(line)
        if not any(counts):
            return line
        pairs = zip(self.markers, counts, strict=True)
        markers = " ".join(marker for marker, count in pairs for _ in range(count))
        return f"{markers} {line}"
