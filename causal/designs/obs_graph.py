"""Causal graphs of the observational design: parse, validate, and the default graph.

A spec gives the graph either as a list of ``[cause, effect]`` edges or as a DOT ``digraph``.
The DOT reader here covers the subset people write by hand: ``->`` edges, chains
``a -> b -> c``, groups ``{a b}`` on either side, ``;`` or newlines between statements, quoted
names, ``//``, ``#`` and ``/* */`` comments, and attribute lists (``[label=...]``), which are
ignored. Undirected edges and subgraphs are refused with a message.

Validation decisions:

- A node must be a column of the table or be listed as unobserved; an unknown node is named,
  with the closest column as a suggestion (usually a typo).
- A graph without a directed path from the treatment to an outcome is an **error**, not a
  warning: such a graph asserts the effect is exactly zero, which contradicts the question
  the spec asks, and in practice it is a reversed or missing edge.
- A node listed as unobserved is treated as unobserved even when a column of that name
  exists: the spec's declaration wins (a column may be a poor proxy the analyst distrusts).

No networkx here: the graph algorithms needed (cycles, reachability, unblockable paths) are a
few lines each, and the module stays importable without the heavy stack.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from causal.errors import SpecError

GraphInput = str | Sequence[Sequence[str]]


@dataclass(frozen=True, eq=False)
class Graph:
    """A directed causal graph: nodes, ``(cause, effect)`` edges and the unobserved nodes.

    Equality ignores the order in which nodes and edges were written.

    Examples
    --------
    >>> g = Graph.from_edges([("age", "warranty"), ("age", "revenue"), ("warranty", "revenue")])
    >>> g.parents("revenue")
    ('age', 'warranty')
    >>> g == parse_graph("digraph { age -> {warranty revenue}; warranty -> revenue }")
    True
    """

    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    unobserved: tuple[str, ...] = ()

    @classmethod
    def from_edges(
        cls,
        edges: Iterable[tuple[str, str]],
        *,
        nodes: Iterable[str] = (),
        unobserved: Iterable[str] = (),
    ) -> Graph:
        """Build a graph; nodes keep first-seen order, duplicate edges are dropped."""
        edge_list = list(dict.fromkeys((str(a), str(b)) for a, b in edges))
        seen = dict.fromkeys(str(n) for n in nodes)
        for a, b in edge_list:
            seen.setdefault(a)
            seen.setdefault(b)
        return cls(tuple(seen), tuple(edge_list), tuple(dict.fromkeys(unobserved)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[frozenset, frozenset, frozenset]:
        return frozenset(self.nodes), frozenset(self.edges), frozenset(self.unobserved)

    def with_unobserved(self, unobserved: Iterable[str]) -> Graph:
        return Graph(self.nodes, self.edges, tuple(dict.fromkeys(unobserved)))

    def parents(self, node: str) -> tuple[str, ...]:
        return tuple(a for a, b in self.edges if b == node)

    def children(self, node: str) -> tuple[str, ...]:
        return tuple(b for a, b in self.edges if a == node)

    def descendants(self, node: str) -> set[str]:
        """Nodes reachable from ``node`` along directed edges (``node`` excluded)."""
        found: set[str] = set()
        stack = [node]
        while stack:
            for child in self.children(stack.pop()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    def find_cycle(self) -> list[str] | None:
        """One directed cycle as a node list whose last node repeats the first, or None."""
        state: dict[str, int] = {}  # 1: on the current path, 2: finished
        path: list[str] = []

        def visit(node: str) -> list[str] | None:
            state[node] = 1
            path.append(node)
            for child in self.children(node):
                if state.get(child) == 1:
                    return [*path[path.index(child) :], child]
                if child not in state and (cycle := visit(child)):
                    return cycle
            state[node] = 2
            path.pop()
            return None

        for node in self.nodes:
            if node not in state and (cycle := visit(node)):
                return cycle
        return None

    def to_dot(self) -> str:
        """The graph as a DOT digraph (unobserved nodes dashed).

        Examples
        --------
        >>> print(Graph.from_edges([("U", "y")], unobserved=["U"]).to_dot())
        digraph {
          "U" [style=dashed];
          "U" -> "y";
        }
        """
        lines = ["digraph {"]
        lines += [f'  "{n}" [style=dashed];' for n in self.unobserved]
        lines += [f'  "{a}" -> "{b}";' for a, b in self.edges]
        return "\n".join([*lines, "}"])

    def to_networkx(self) -> Any:
        """A ``networkx.DiGraph`` copy (networkx is imported here, lazily)."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from(self.edges)
        return g


# --- parsing -------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>//[^\n]*|\#[^\n]*|/\*.*?\*/)
  | (?P<quoted>"(?:[^"\\]|\\.)*")
  | (?P<arrow>->|--)
  | (?P<punct>[{}\[\];,=])
  | (?P<id>[A-Za-z_\u0080-\uffff][\w.\u0080-\uffff]*|-?(?:\.\d+|\d+(?:\.\d*)?))
    """,
    re.VERBOSE | re.DOTALL,
)
_KEYWORDS = {"strict", "graph", "digraph", "node", "edge", "subgraph"}


def parse_graph(graph: GraphInput, *, field: str = "design.graph") -> Graph:
    """Parse an edges list or a DOT digraph into a :class:`Graph` (syntax only).

    Examples
    --------
    >>> parse_graph([["age", "warranty"], ["age", "revenue"]]).edges
    (('age', 'warranty'), ('age', 'revenue'))
    >>> parse_graph('digraph { "a" -> b -> c; /* a group: */ c -> {d e} }').edges
    (('a', 'b'), ('b', 'c'), ('c', 'd'), ('c', 'e'))
    """
    if isinstance(graph, str):
        return _parse_dot(graph, field)
    if not isinstance(graph, Sequence) or not graph:
        raise SpecError(
            f"{field}: expected a non-empty list of [cause, effect] edges or a DOT digraph "
            f"string, got {type(graph).__name__}"
        )
    edges = []
    for i, edge in enumerate(graph):
        ok = isinstance(edge, Sequence) and not isinstance(edge, str) and len(edge) == 2
        if not ok or not all(isinstance(n, str) and n.strip() for n in edge):
            raise SpecError(
                f"{field}[{i}]: expected an edge [cause, effect] of two node names, got {edge!r}"
            )
        edges.append((edge[0].strip(), edge[1].strip()))
    return Graph.from_edges(edges)


def _tokens(text: str, field: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            line = text.count("\n", 0, pos) + 1
            raise SpecError(
                f"{field}: cannot read the DOT graph at line {line} near {text[pos : pos + 15]!r}; "
                "write edges as `a -> b;`"
            )
        pos = m.end()
        kind = m.lastgroup or ""
        if kind in ("space", "comment"):
            continue
        value = m.group()
        if kind == "quoted":
            kind, value = "id", re.sub(r"\\(.)", r"\1", value[1:-1])
        elif kind == "id" and value.lower() in _KEYWORDS:
            kind, value = "kw", value.lower()
        out.append((kind, value))
    return out


class _DotParser:
    def __init__(self, text: str, field: str) -> None:
        self.toks = _tokens(text, field)
        self.i = 0
        self.field = field
        self.nodes: list[str] = []
        self.edges: list[tuple[str, str]] = []

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else ("end", "")

    def fail(self, what: str) -> SpecError:
        near = " ".join(v for _, v in self.toks[max(0, self.i - 2) : self.i + 3])
        return SpecError(f"{self.field}: {what} (near `{near}`); write edges as `a -> b;`")

    def parse(self) -> Graph:
        if self.peek() == ("kw", "strict"):
            self.i += 1
        if self.peek() == ("kw", "graph"):
            raise self.fail("an undirected `graph` cannot be a causal graph; use `digraph`")
        wrapped = self.peek() == ("kw", "digraph")
        if wrapped:
            self.i += 1
            if self.peek()[0] == "id":
                self.i += 1  # the graph's name
            if self.peek() != ("punct", "{"):
                raise self.fail("expected `{` after `digraph`")
            self.i += 1
        self.statements(closing=wrapped)
        if self.peek()[0] != "end":
            raise self.fail("unexpected text after the end of the graph")
        if not self.nodes:
            raise SpecError(f"{self.field}: the graph has no nodes")
        return Graph.from_edges(self.edges, nodes=self.nodes)

    def statements(self, *, closing: bool) -> None:
        while True:
            kind, value = self.peek()
            if kind == "end":
                if closing:
                    raise self.fail("missing the closing `}`")
                return
            if (kind, value) == ("punct", "}"):
                if not closing:
                    raise self.fail("unexpected `}`")
                self.i += 1
                return
            if kind == "punct" and value in ";,":
                self.i += 1
            elif kind == "kw" and value in ("node", "edge", "graph"):
                self.i += 1
                self.attributes()  # default attributes: layout only
            elif kind == "kw" and value == "subgraph":
                raise self.fail("subgraphs are not supported")
            elif kind == "id" and self.peek(1) == ("punct", "="):
                self.i += 3  # a graph attribute such as rankdir=LR
            else:
                self.statement()

    def statement(self) -> None:
        left = self.operand()
        while self.peek()[0] == "arrow":
            if self.peek()[1] == "--":
                raise self.fail("undirected edge `--`; a causal graph needs `->`")
            self.i += 1
            right = self.operand()
            self.edges += [(a, b) for a in left for b in right]
            left = right
        self.attributes()

    def operand(self) -> list[str]:
        kind, value = self.peek()
        if kind == "id":
            self.i += 1
            self.nodes.append(value)
            return [value]
        if (kind, value) != ("punct", "{"):
            raise self.fail(f"expected a node name, got {value or 'the end'!r}")
        self.i += 1
        group = []
        while self.peek() != ("punct", "}"):
            kind, value = self.peek()
            if kind == "id":
                group.append(value)
            elif not (kind == "punct" and value in ";,"):
                raise self.fail("a `{...}` group may only list node names")
            self.i += 1
        self.i += 1
        self.nodes += group
        return group

    def attributes(self) -> None:
        if self.peek() != ("punct", "["):
            return
        while self.peek() not in (("punct", "]"), ("end", "")):
            self.i += 1
        if self.peek()[0] == "end":
            raise self.fail("unclosed attribute list `[`")
        self.i += 1


def _parse_dot(text: str, field: str) -> Graph:
    return _DotParser(text, field).parse()


# --- validation ----------------------------------------------------------------------------------


def validate_graph(
    graph: Graph,
    *,
    columns: Iterable[str],
    treatment: str,
    outcomes: Sequence[str],
    unobserved: Iterable[str] = (),
    field: str = "design.graph",
) -> Graph:
    """Check a parsed graph against the table and the question; return it with ``unobserved``.

    Raises :class:`SpecError` naming the problem: an unknown node (with the closest column),
    a cycle (printed), a treatment or outcome missing from the graph or declared unobserved,
    or no directed path from the treatment to an outcome.

    Examples
    --------
    >>> g = parse_graph([["agee", "d"], ["agee", "y"], ["d", "y"]])
    >>> validate_graph(g, columns=["age", "d", "y"], treatment="d", outcomes=["y"])
    Traceback (most recent call last):
    ...
    causal.errors.SpecError: design.graph: node 'agee' (did you mean 'age'?) is neither a column \
of the table nor listed in design.unobserved; fix the name, or list it under design.unobserved \
if it is not measured
    >>> validate_graph(parse_graph("digraph { d -> y -> d }"), columns=["d", "y"],
    ...                treatment="d", outcomes=["y"])
    Traceback (most recent call last):
    ...
    causal.errors.SpecError: design.graph has a cycle d -> y -> d; a causal graph must be \
acyclic (remove or reverse one of these edges)
    """
    columns = list(columns)
    declared = list(dict.fromkeys(unobserved))
    stray = [u for u in declared if u not in graph.nodes]
    if stray:
        raise SpecError(
            f"design.unobserved lists {_names(stray)}, not a node of {field}; "
            "remove it or add its edges to the graph"
        )
    unknown = [n for n in graph.nodes if n not in columns and n not in declared]
    if unknown:
        parts = [f"{n!r}{_suggest(n, columns)}" for n in unknown]
        noun = "node" if len(unknown) == 1 else "nodes"
        verb = "is neither a column" if len(unknown) == 1 else "are neither columns"
        raise SpecError(
            f"{field}: {noun} {', '.join(parts)} {verb} of the table nor listed in "
            "design.unobserved; fix the name, or list it under design.unobserved if it is "
            "not measured"
        )
    if cycle := graph.find_cycle():
        raise SpecError(
            f"{field} has a cycle {' -> '.join(cycle)}; a causal graph must be acyclic "
            "(remove or reverse one of these edges)"
        )
    for role, node in [("treatment", treatment), *(("outcome", o) for o in outcomes)]:
        if node not in graph.nodes:
            raise SpecError(
                f"{field} does not contain the {role} {node!r}; add its edges "
                f"(e.g. {treatment} -> {outcomes[0]})"
            )
        if node in declared:
            raise SpecError(f"design.unobserved lists the {role} {node!r}; it must be measured")
    descendants = graph.descendants(treatment)
    for outcome in outcomes:
        if outcome not in descendants:
            raise SpecError(
                f"{field} has no directed path from {treatment!r} to {outcome!r}: the graph "
                f"asserts the effect is zero; add the edge {treatment} -> {outcome} (or the "
                "path through its mediators), or check the direction of the edges"
            )
    return graph.with_unobserved(declared)


def _names(nodes: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in nodes)


def _suggest(name: str, columns: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest column, or nothing."""
    lowered = {c.lower(): c for c in columns}
    match = lowered.get(name.lower()) or next(
        iter(difflib.get_close_matches(name, columns, n=1, cutoff=0.6)), None
    )
    return f" (did you mean {match!r}?)" if match else ""


# --- the default graph and helpers for identification --------------------------------------------


def common_causes_graph(
    *,
    treatment: str,
    outcomes: Sequence[str],
    confounders: Sequence[str],
    effect_modifiers: Sequence[str] = (),
) -> Graph:
    """The graph implied by a confounder list: each confounder causes treatment and outcomes.

    Effect modifiers that are not confounders only point to the outcomes (they do not need
    adjusting for, but they belong in the picture).

    Examples
    --------
    >>> g = common_causes_graph(treatment="d", outcomes=["y"], confounders=["age"],
    ...                         effect_modifiers=["segment"])
    >>> g.edges
    (('age', 'd'), ('age', 'y'), ('d', 'y'), ('segment', 'y'))
    """
    edges = [(c, target) for c in confounders for target in (treatment, *outcomes)]
    edges += [(treatment, o) for o in outcomes]
    edges += [(m, o) for m in effect_modifiers if m not in confounders for o in outcomes]
    return Graph.from_edges(edges, nodes=(treatment, *outcomes))


def adjustment_candidates(graph: Graph, *, treatment: str, outcomes: Sequence[str]) -> tuple:
    """Observed nodes that may enter an adjustment set: not the treatment, an outcome, an
    unobserved node, or a descendant of the treatment (adjusting for those biases the effect).

    Examples
    --------
    >>> g = Graph.from_edges([("x", "d"), ("x", "y"), ("d", "m"), ("m", "y"), ("U", "y")],
    ...                      unobserved=["U"])
    >>> adjustment_candidates(g, treatment="d", outcomes=["y"])
    ('x',)
    """
    excluded = {treatment, *outcomes, *graph.unobserved, *graph.descendants(treatment)}
    return tuple(n for n in graph.nodes if n not in excluded)


def unblockable_backdoor_path(
    graph: Graph, treatment: str, outcome: str, observed: Iterable[str]
) -> list[tuple[str, str]] | None:
    """A backdoor path no observed set can block: every node between the treatment and the
    outcome is unobserved and none is a collider. Returned as ``[(node, arrow_to_next), ...]``
    for :func:`format_path`, or None when there is no such path.

    Examples
    --------
    >>> g = Graph.from_edges([("U", "d"), ("U", "y"), ("d", "y")], unobserved=["U"])
    >>> format_path(unblockable_backdoor_path(g, "d", "y", observed=["d", "y"]))
    'd <- U -> y'
    """
    observed = set(observed)

    def walk(node: str, came_in: bool, path: list[tuple[str, str]]) -> list | None:
        # came_in: the edge we arrived by points into `node` (so `node` is a collider if the
        # next edge also points into it).
        steps = [(c, "->", True) for c in graph.children(node)]
        steps += [(p, "<-", False) for p in graph.parents(node)]
        for nxt, arrow, into_next in steps:
            if came_in and arrow == "<-":
                continue  # node would be a collider: closed unless conditioned on
            if any(n == nxt for n, _ in path) or nxt == treatment:
                continue
            step = [*path, (node, arrow)]
            if nxt == outcome:
                return [*step, (outcome, "")]
            if nxt not in observed and (found := walk(nxt, into_next, step)):
                return found
        return None

    for parent in graph.parents(treatment):
        if parent == outcome:
            return [(treatment, "<-"), (outcome, "")]
        if parent not in observed and (found := walk(parent, False, [(treatment, "<-")])):
            return found
    return None


def format_path(path: list[tuple[str, str]] | None) -> str:
    """``a <- U -> b`` from :func:`unblockable_backdoor_path` output."""
    if not path:
        return ""
    return " ".join(f"{node} {arrow}" if arrow else node for node, arrow in path)


@dataclass(frozen=True)
class ResolvedGraph:
    """The spec's graph (or the one implied by its confounders), validated against the table."""

    graph: Graph
    from_spec: bool
    observed_adjustment_candidates: tuple[str, ...]


def resolve_graph(spec: Any, columns: Sequence[str]) -> ResolvedGraph:
    """The validated graph of an observational spec.

    With ``design.graph`` it is parsed and checked against the table's columns; without, it is
    :func:`common_causes_graph` of ``design.confounders`` (checked too, so a misspelt
    confounder is reported with a suggestion).
    """
    design = spec.design
    outcomes = [o.column for o in spec.outcomes]
    if design.graph is None:
        graph = common_causes_graph(
            treatment=spec.treatment,
            outcomes=outcomes,
            confounders=design.confounders,
            effect_modifiers=design.effect_modifiers,
        )
        field, unobserved = "design.confounders", ()
    else:
        graph = parse_graph(design.graph)
        field, unobserved = "design.graph", design.unobserved
    graph = validate_graph(
        graph,
        columns=columns,
        treatment=spec.treatment,
        outcomes=outcomes,
        unobserved=unobserved,
        field=field,
    )
    candidates = adjustment_candidates(graph, treatment=spec.treatment, outcomes=outcomes)
    return ResolvedGraph(graph, design.graph is not None, candidates)
