"""Building blocks found in a traced graph, and their fragmentation (ShuffleNet V2, Sec. 2, G3).

The paper counts a block's "fragmented operators": its individual convolution or pooling operations
(NASNet-A 13 per block, ResNet 2 or 3). Here a block is found from the module tree and the traced data flow:

- **A block** is the outermost module below the model whose subtree runs at least 2 fragmented operators
  (conv, pooling, or a linear layer, which is a 1x1 conv) and which is neither a plain container
  (``nn.Sequential`` / ``nn.ModuleList`` / ``nn.ModuleDict`` without a ``forward`` of its own: it only chains
  its children) nor a **stage**. Below a container or a stage the search goes on in its children.
- **A stage** is a module that stacks units: two of its children of the same class (children of a plain
  container child count as its own), each with at least 2 fragmented operators, where one consumes a tensor
  the other produced (a serial stack; the same-class sub-modules of a NAS cell run side by side instead).
- When nothing below the model is a block, the model itself is one when its fragmented operators do not
  form a single chain (a model that *is* a cell); a plain chain of layers has no blocks.

Per block: ``ops`` = fragmented operators (the paper's count), ``branches`` = the largest number of them no
two of which depend on each other (the most that could run side by side; Dilworth's width of the data-flow
order), ``small_ops`` = the block's other kernels (BN, activations, adds, concat, copies).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from shufflenet.audit.trace import Graph, Node

MIN_FRAGMENTS = 2


@dataclass(frozen=True)
class Block:
    """One building block: its module path and class and its ops (indices into the graph's nodes)."""

    path: str
    module_type: str
    nodes: tuple[int, ...]
    ops: int
    branches: int
    small_ops: int
    flops: int
    mac: int

    @property
    def kernels(self) -> int:
        """Every priced op of the block: fragmented operators plus small ops."""
        return self.ops + self.small_ops


def is_container(module: nn.Module) -> bool:
    """A module that only chains or holds its children (no ``forward`` of its own)."""
    if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
        return True
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


class _Tree:
    """The model's module tree with each module's traced nodes (its subtree's)."""

    def __init__(self, model: nn.Module, graph: Graph) -> None:
        self.graph = graph
        self.modules = dict(model.named_modules())
        self.children: dict[str, list[str]] = {p: [] for p in self.modules}
        for path in self.modules:
            if path:
                parent = path.rpartition(".")[0]
                self.children.setdefault(parent, []).append(path)
        self.owned: dict[str, list[int]] = {p: [] for p in self.modules}
        for node in graph.nodes:
            name = "" if node.module == "(root)" else node.module
            while True:  # every ancestor of the module that ran it owns the node
                if name in self.owned:
                    self.owned[name].append(node.index)
                if not name:
                    break
                name = name.rpartition(".")[0]
        self.fragments = {p: sum(graph.nodes[i].fragment for i in idx) for p, idx in self.owned.items()}

    def flat_children(self, path: str) -> list[str]:
        out: list[str] = []
        for child in self.children.get(path, []):
            if is_container(self.modules[child]):
                out += self.flat_children(child)
            else:
                out.append(child)
        return out

    def is_stage(self, path: str) -> bool:
        units = [c for c in self.flat_children(path) if self.fragments[c] >= MIN_FRAGMENTS]
        owner: dict[int, str] = {i: c for c in units for i in self.owned[c]}
        for c in units:
            cls = type(self.modules[c])
            for i in self.owned[c]:
                for p in self.graph.nodes[i].inputs:
                    other = owner.get(p)
                    if other is not None and other != c and type(self.modules[other]) is cls:
                        return True
        return False

    def search(self, path: str) -> list[str]:
        if self.fragments.get(path, 0) < MIN_FRAGMENTS:
            return []
        module = self.modules[path]
        if path and not is_container(module) and not self.is_stage(path):
            return [path]
        return [b for child in self.children.get(path, []) for b in self.search(child)]


def find_blocks(model: nn.Module, graph: Graph) -> list[Block]:
    """The model's building blocks in execution order (see the module docstring)."""
    tree = _Tree(model, graph)
    paths = tree.search("")
    if not paths and not is_container(model) and tree.fragments[""] >= MIN_FRAGMENTS:
        if width([graph.nodes[i] for i in tree.owned[""]]) > 1:
            paths = [""]
    blocks = [_block(path, type(tree.modules[path]).__name__, [graph.nodes[i] for i in tree.owned[path]])
              for path in paths]
    return sorted(blocks, key=lambda b: b.nodes[0] if b.nodes else 0)


def _block(path: str, module_type: str, nodes: list[Node]) -> Block:
    frag = [n for n in nodes if n.fragment]
    return Block(path=path or "(root)", module_type=module_type, nodes=tuple(n.index for n in nodes),
                 ops=len(frag), branches=width(nodes), small_ops=len(nodes) - len(frag),
                 flops=sum(n.row.flops for n in nodes), mac=sum(n.row.mac for n in nodes))


def width(nodes: list[Node]) -> int:
    """The largest set of fragmented operators among ``nodes`` no two of which depend on each other (through
    ``nodes``), by Dilworth's theorem: their count minus a maximum matching of the "runs before" order."""
    inside = {n.index for n in nodes}
    reach: dict[int, int] = {}  # node -> bitset of the fragmented nodes (positions) that reach it
    frag = [n.index for n in nodes if n.fragment]
    pos = {idx: k for k, idx in enumerate(frag)}
    for n in sorted(nodes, key=lambda n: n.index):
        bits = 0
        for p in n.inputs:
            if p in inside:
                bits |= reach.get(p, 0)
                if p in pos:
                    bits |= 1 << pos[p]
        reach[n.index] = bits
    before = [[a for a in range(len(frag)) if reach[frag[b]] >> a & 1] for b in range(len(frag))]
    match: dict[int, int] = {}  # a -> b: a chain cover's links (a runs before b)

    def augment(b: int, seen: set[int]) -> bool:  # Kuhn's augmenting path
        for a in before[b]:
            if a not in seen:
                seen.add(a)
                if a not in match or augment(match[a], seen):
                    match[a] = b
                    return True
        return False

    links = sum(augment(b, set()) for b in range(len(frag)))
    return len(frag) - links
