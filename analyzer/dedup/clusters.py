"""Connected components over candidate-duplicate edges, labelled by their smallest member."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

I64 = npt.NDArray[np.int64]


def cluster_roots(sources: I64, targets: I64) -> tuple[I64, I64]:
    """For every node on an edge, return (node, smallest node of its connected component).

    Nodes are arbitrary non-negative integers (doc_seq); nodes on no edge are singletons and are
    not returned. scipy's union-find-based `connected_components` handles chains of any length.
    """
    if sources.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    nodes, compact = np.unique(np.concatenate([sources, targets]), return_inverse=True)
    compact_sources, compact_targets = compact[: sources.size], compact[sources.size :]
    graph = coo_matrix(
        (np.ones(sources.size, dtype=np.int8), (compact_sources, compact_targets)),
        shape=(nodes.size, nodes.size),
    )
    _, component = connected_components(graph, directed=False)
    smallest = np.full(component.max() + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, component, nodes.astype(np.int64))
    return nodes.astype(np.int64), smallest[component]


def reference_cluster_roots(edges: list[tuple[int, int]]) -> dict[int, int]:
    """Slow, obviously-correct union-find used by the tests as the reference."""
    parent: dict[int, int] = {}

    def find(node: int) -> int:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for first, second in edges:
        root_first, root_second = find(first), find(second)
        if root_first != root_second:
            parent[max(root_first, root_second)] = min(root_first, root_second)
    return {node: find(node) for node in list(parent)}
