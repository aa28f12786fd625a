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
