"""The field dependency graph: cycles (reported on every field caught in one) and order."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping

from .errors import Path

__all__ = ["resolution_order"]


def resolution_order(
    keys: Mapping[str, int],
    deps: Mapping[int, set[str]],
    key_of: Mapping[int, str],
    error: Callable[[Path, str], None],
) -> list[int]:
    """Dependency order (ties broken by declaration order); fields in cycles are reported."""
    edges = {
        index: sorted({keys[key] for key in needs if key in keys}) for index, needs in deps.items()
    }
    cyclic = _cycles(edges, key_of, error)
    waiting = {index: {dep for dep in edges[index] if dep not in cyclic} for index in edges}
    users: dict[int, list[int]] = {index: [] for index in edges}
    for index, needs in waiting.items():
        for dep in needs:
            users[dep].append(index)
    ready = [index for index, needs in waiting.items() if not needs and index not in cyclic]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for user in users[index]:
            waiting[user].discard(index)
            if not waiting[user] and user not in cyclic:
                heapq.heappush(ready, user)
    return order


def _cycles(
    edges: Mapping[int, list[int]],
    key_of: Mapping[int, str],
    error: Callable[[Path, str], None],
) -> set[int]:
    """Report every field that is part of a dependency cycle (Tarjan's algorithm)."""
    counter = 0
    number: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: list[int] = []
    on_stack: set[int] = set()
    cyclic: set[int] = set()

    def key(index: int) -> str:
        return key_of.get(index, f"fields.{index}")

    def visit(root: int) -> None:
        nonlocal counter
        work = [(root, 0)]
        number[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, position = work[-1]
            targets = edges[node]
            if position < len(targets):
                work[-1] = (node, position + 1)
                target = targets[position]
                if target not in number:
                    number[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], number[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == number[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    report(sorted(component))

    def report(component: list[int]) -> None:
        members = set(component)
        cyclic.update(members)
        for index in component:
            if len(component) == 1:
                error(("fields", index), "depends on itself")
                continue
            if len(component) == 2:
                other = component[1] if component[0] == index else component[0]
                error(("fields", index), f"depends on '{key(other)}' which depends on it")
                continue
            loop = _loop_through(index, edges, members)
            error(
                ("fields", index),
                "is part of a dependency cycle: " + " -> ".join(key(item) for item in loop),
            )

    for index in sorted(edges):
        if index not in number:
            visit(index)
    return cyclic


def _loop_through(start: int, edges: Mapping[int, list[int]], members: set[int]) -> list[int]:
    """The shortest dependency loop from ``start`` back to itself inside one component."""
    previous: dict[int, int] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in edges[node]:
                if target not in members:
                    continue
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    return [start, start]  # pragma: no cover - a component always has a loop
