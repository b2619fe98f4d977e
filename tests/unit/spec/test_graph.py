"""The needs graph: cycles, stable topological order, closure."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.spec.graph import closure, find_cycle, topological_order

Graph = tuple[list[str], dict[str, list[str]]]


@st.composite
def dags(draw: st.DrawFn) -> Graph:
    """Random DAGs: a job may only need jobs written before it, then shuffled."""
    size = draw(st.integers(min_value=0, max_value=12))
    names = [f"j{i}" for i in range(size)]
    needs = {
        name: draw(st.lists(st.sampled_from(names[:i]), unique=True) if i else st.just([]))
        for i, name in enumerate(names)
    }
    order = draw(st.permutations(names))
    return list(order), needs


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    """Random directed graphs, cycles and self-loops allowed."""
    size = draw(st.integers(min_value=1, max_value=8))
    names = [f"j{i}" for i in range(size)]
    needs = {name: draw(st.lists(st.sampled_from(names), unique=True)) for name in names}
    return names, needs


def _reaches(start: str, goal: str, needs: dict[str, list[str]]) -> bool:
    seen: set[str] = set()
    pending = list(needs.get(start, []))
    while pending:
        node = pending.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            pending.extend(needs.get(node, []))
    return False


def _has_cycle(names: list[str], needs: dict[str, list[str]]) -> bool:
    return any(_reaches(name, name, needs) for name in names)


def test_a_cycle_is_returned_as_a_closed_path_from_its_first_job() -> None:
    needs = {"a": ["b"], "b": ["c"], "c": ["a"]}
    assert find_cycle(["x", "b", "a", "c"], needs) == ["b", "c", "a", "b"]


def test_a_self_loop_is_a_cycle_of_one() -> None:
    assert find_cycle(["a"], {"a": ["a"]}) == ["a", "a"]


def test_a_dag_has_no_cycle() -> None:
    assert find_cycle(["a", "b", "c"], {"c": ["a", "b"], "b": ["a"]}) is None


def test_needs_outside_the_names_are_ignored() -> None:
    assert find_cycle(["a"], {"a": ["gone"]}) is None
    assert topological_order(["b"], {"b": ["a"]}) == ["b"]


def test_topological_order_keeps_file_order_among_ready_jobs() -> None:
    needs = {"test": ["build"], "docs": [], "build": []}
    assert topological_order(["test", "docs", "build"], needs) == ["docs", "build", "test"]


def test_topological_order_refuses_a_cycle_and_names_it() -> None:
    with pytest.raises(ValueError, match="a -> b -> a"):
        topological_order(["a", "b"], {"a": ["b"], "b": ["a"]})


def test_closure_is_the_targets_and_everything_they_need() -> None:
    needs = {"deploy": ["test"], "test": ["build", "lint"], "docs": ["build"]}
    assert closure(["deploy"], needs) == {"deploy", "test", "build", "lint"}
    assert closure([], needs) == set()


@given(dags())
def test_topological_order_respects_every_edge(graph: Graph) -> None:
    names, needs = graph
    order = topological_order(names, needs)
    assert sorted(order) == sorted(names)
    position = {name: i for i, name in enumerate(order)}
    for name, deps in needs.items():
        for dep in deps:
            assert position[dep] < position[name]


@given(dags())
def test_topological_order_is_the_file_order_when_it_already_works(graph: Graph) -> None:
    names, needs = graph
    ordered = topological_order(names, needs)
    assert topological_order(ordered, needs) == ordered


@given(graphs())
def test_find_cycle_finds_a_cycle_exactly_when_one_exists(graph: Graph) -> None:
    names, needs = graph
    cycle = find_cycle(names, needs)
    assert (cycle is not None) == _has_cycle(names, needs)
    if cycle is not None:
        assert cycle[0] == cycle[-1]
        assert len(set(cycle[:-1])) == len(cycle) - 1
        for job, dep in itertools.pairwise(cycle):
            assert dep in needs[job]
        assert min(names.index(name) for name in cycle) == names.index(cycle[0])


@given(graphs())
def test_topological_order_fails_exactly_on_cycles(graph: Graph) -> None:
    names, needs = graph
    if _has_cycle(names, needs):
        with pytest.raises(ValueError, match="cycle"):
            topological_order(names, needs)
    else:
        assert len(topological_order(names, needs)) == len(names)


@given(graphs(), st.data())
def test_closure_is_closed_under_needs(graph: Graph, data: st.DataObject) -> None:
    names, needs = graph
    targets = data.draw(st.lists(st.sampled_from(names)))
    result = closure(targets, needs)
    assert set(targets) <= result
    for name in result:
        assert set(needs.get(name, [])) <= result
    for name in result - set(targets):
        assert any(_reaches(target, name, needs) for target in targets)
