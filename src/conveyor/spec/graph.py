"""Pure helpers over the `needs` graph of jobs, shared by the loader and the engine.

`needs[a]` lists the jobs `a` needs. Names absent from `needs` need nothing.
Every order is stable: ties are broken by the order of `names` (file order).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence


def find_cycle(names: Sequence[str], needs: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle as a path `[a, b, c, a]` (each needs the next), or None.

    The path starts at the cycle's job that comes first in `names`. Edges to
    names outside `names` are ignored.
    """
    index = {name: i for i, name in enumerate(names)}
    done: set[str] = set()
    for root in names:
        if root in done:
            continue
        cycle = _cycle_from(root, index, needs, done)
        if cycle is not None:
            start = min(range(len(cycle)), key=lambda i: index[cycle[i]])
            rotated = cycle[start:] + cycle[:start]
            return [*rotated, rotated[0]]
    return None


def _cycle_from(
    root: str, index: Mapping[str, int], needs: Mapping[str, Sequence[str]], done: set[str]
) -> list[str] | None:
    """Depth-first search from `root` without recursion; the nodes of a cycle it meets."""
    stack: list[tuple[str, Iterable[str]]] = [(root, iter(needs.get(root, ())))]
    on_path: dict[str, int] = {root: 0}
    while stack:
        node, pending = stack[-1]
        for child in pending:
            if child not in index or child in done:
                continue
            if child in on_path:
                return [name for name, _ in stack[on_path[child] :]]
            on_path[child] = len(stack)
            stack.append((child, iter(needs.get(child, ()))))
            break
        else:
            stack.pop()
            del on_path[node]
            done.add(node)
    return None


def topological_order(names: Sequence[str], needs: Mapping[str, Sequence[str]]) -> list[str]:
    """`names` ordered so each comes after what it needs; file order among ready ones.

    Needs outside `names` count as met, so a subset of a pipeline can be
    ordered on its own. ValueError when the graph has a cycle.
    """
    index = {name: i for i, name in enumerate(names)}
    waiting = dict.fromkeys(names, 0)
    needed_by: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        for dep in dict.fromkeys(needs.get(name, ())):
            if dep not in index:
                continue
            waiting[name] += 1
            needed_by[dep].append(name)
    ready = [index[name] for name in names if waiting[name] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for child in needed_by[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, index[child])
    if len(order) != len(names):
        cycle = find_cycle(names, needs) or []
        raise ValueError("jobs form a cycle: " + " -> ".join(cycle))
    return order


def closure(targets: Iterable[str], needs: Mapping[str, Sequence[str]]) -> set[str]:
    """The targets plus everything they need, directly or not."""
    seen: set[str] = set()
    pending = list(targets)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(dep for dep in needs.get(name, ()) if dep not in seen)
    return seen
