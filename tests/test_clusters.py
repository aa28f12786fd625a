"""Clustering candidate edges: scipy components against a plain union-find."""

from __future__ import annotations

import random

import numpy as np

from analyzer.dedup.clusters import cluster_roots, reference_cluster_roots


def as_dict(nodes: np.ndarray, roots: np.ndarray) -> dict[int, int]:
    return dict(zip(nodes.tolist(), roots.tolist(), strict=True))


def test_long_chain_collapses_to_its_smallest_member() -> None:
    chain = np.arange(1000, dtype=np.int64)
    nodes, roots = cluster_roots(chain[1:][::-1].copy(), chain[:-1][::-1].copy())
    assert set(roots.tolist()) == {0}
    assert nodes.size == 1000


def test_random_graphs_match_reference_union_find() -> None:
    rng = random.Random(11)
    for _ in range(20):
        edges = [(rng.randrange(300), rng.randrange(300)) for _ in range(rng.randrange(1, 200))]
        sources = np.array([a for a, _ in edges], dtype=np.int64)
        targets = np.array([b for _, b in edges], dtype=np.int64)
        assert as_dict(*cluster_roots(sources, targets)) == reference_cluster_roots(edges)


def test_no_edges_no_clusters() -> None:
    nodes, roots = cluster_roots(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert nodes.size == roots.size == 0


def test_star_buckets_and_chains_merge_into_one_cluster() -> None:
    # two LSH buckets (stars around 5 and 9) joined by one exact edge 9-5 and a chain 20-21-22
    edges = [(6, 5), (7, 5), (10, 9), (11, 9), (9, 5), (21, 20), (22, 21)]
    sources = np.array([a for a, _ in edges], dtype=np.int64)
    targets = np.array([b for _, b in edges], dtype=np.int64)
    clusters = as_dict(*cluster_roots(sources, targets))
    assert clusters == {5: 5, 6: 5, 7: 5, 9: 5, 10: 5, 11: 5, 20: 20, 21: 20, 22: 20}
