"""The offline memory plan: where every activation tensor lives while the graph runs.

Three buffers: INPUT (written by prepare, never overwritten: reconstruction scores read it after
the run), OUTPUT, and one arena. RESHAPE/EXPAND_DIMS/SQUEEZE outputs alias their input; a
lookup or same-shape elementwise op writes over an input that dies there. The arena tensors are
placed greedily, largest first, at the lowest offset free of every tensor alive at the same time
(TFLM's GreedyMemoryPlanner does the same).
"""

from __future__ import annotations

from dataclasses import dataclass

from hostgen.model.engine.lowering import Graph

INPUT, OUTPUT, ARENA = "input", "output", "arena"
IN_PLACE_KINDS = ("lookup", "add", "mul")


@dataclass(frozen=True)
class Location:
    buffer: str
    offset: int


@dataclass(frozen=True)
class MemoryPlan:
    locations: dict[int, Location]  # tensor index -> where its first byte is
    arena_bytes: int
    input_bytes: int
    output_bytes: int

    @property
    def activation_bytes(self) -> int:
        return self.arena_bytes + self.input_bytes + self.output_bytes


def plan_memory(graph: Graph) -> MemoryPlan:
    root = {graph.input: graph.input}
    for op in graph.ops:
        if op.kind == "alias":
            root[op.output] = root[op.inputs[0]]
        else:
            root[op.output] = op.output
    last_use = {}
    for step, op in enumerate(graph.ops):
        for index in op.inputs:
            last_use[root[index]] = step
    last_use[root[graph.output]] = len(graph.ops)
    first_use = {root[graph.input]: -1}
    for step, op in enumerate(graph.ops):
        first_use.setdefault(root[op.output], step)

    fixed = {root[graph.input]: INPUT, root[graph.output]: OUTPUT}
    shares: dict[int, int] = {}  # an in-place output root -> the input root whose bytes it reuses
    for step, op in enumerate(graph.ops):
        if op.kind not in IN_PLACE_KINDS or root[op.output] in fixed:
            continue
        for index in op.inputs:
            source = _owner(shares, root[index])
            if source not in fixed and last_use[root[index]] == step and graph.tensors[index].size == graph.tensors[op.output].size:
                shares[root[op.output]] = source
                last_use[source] = max(last_use[source], last_use[root[op.output]])
                break

    owners = sorted({_owner(shares, r) for r in set(root.values())} - set(fixed),
                    key=lambda r: (-graph.tensors[r].size, first_use[r]))
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    offsets = {}
    for owner in owners:
        size, first, last = graph.tensors[owner].size, first_use[owner], last_use.get(owner, first_use[owner])
        offset = 0
        while True:
            clashes = [o + s for o, s, f, end in placed if not (last < f or end < first) and o < offset + size and offset < o + s]
            if not clashes:
                break
            offset = min(clashes)
        placed.append((offset, size, first, last))
        offsets[owner] = offset

    locations = {}
    for index, tensor_root in root.items():
        if tensor_root in fixed:
            locations[index] = Location(fixed[tensor_root], 0)
        else:
            locations[index] = Location(ARENA, offsets[_owner(shares, tensor_root)])
    arena = max((offset + size for offset, size, _, _ in placed), default=0)
    return MemoryPlan(locations, arena, graph.input_tensor.size, graph.output_tensor.size)


def _owner(shares: dict[int, int], tensor_root: int) -> int:
    while tensor_root in shares:
        tensor_root = shares[tensor_root]
    return tensor_root
