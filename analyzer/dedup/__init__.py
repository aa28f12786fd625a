"""Near-duplicate clustering: candidate edges from LSH buckets → connected components."""
