"""Host from the URL, and the character and byte size of each document."""

from __future__ import annotations

from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc


def host_of(url: str | None) -> str | None:
    """Lower-cased host name without a leading `www.`; None when the URL has none."""
    if not url:
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if host and host.startswith("www."):
        host = host[4:]
    # "www." alone (e.g. from "a://www.") leaves nothing: no host, not an empty one
    return host or None


class UrlAndSizeTagger:
    """Adds `host`, `n_chars` and `n_bytes` (UTF-8)."""

    name = "url_size"
    version = "url-size-v2"

    def tag(self, documents: pa.RecordBatch) -> dict[str, pa.Array]:
        text = documents.column("text")
        return {
            "host": pa.array([host_of(url) for url in documents.column("url").to_pylist()], type=pa.string()),
            "n_chars": pc.utf8_length(text).cast(pa.int64()),
            "n_bytes": pc.binary_length(text).cast(pa.int64()),
        }
