"""Pure shape arithmetic behind the cost rules: integers in, integers out, no tensors.

Each function is a closed form that the rule tables (:mod:`shufflenet.cost.tables`) apply to the shapes
of one aten op call, and that the tests check on hand-sized shapes (the fvcore handle design).

Conventions (ARCHITECTURE.md, paper Sec. 2):

- FLOPs are multiply-adds. A convolution costs ``out_numel * (C_in / groups) * prod(kernel)``; a matrix
  product ``(m, k) @ (k, n)`` costs ``m * n * k``. Bias additions are not counted.
- MAC (memory access cost) is elements read plus elements written, weights included, each tensor read
  once per op (the cache is assumed to hold it, as in the paper's G1 derivation).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from math import prod

Shape = Sequence[int]


def numel(shape: Shape) -> int:
    """Number of elements of a tensor of this shape."""
    return prod(shape)


# --- FLOPs (multiply-adds) -------------------------------------------------------------------------


def conv_flops(x_shape: Shape, w_shape: Shape, out_shape: Shape, transposed: bool = False) -> int:
    """Multiply-adds of an N-d convolution, any groups (depthwise included).

    ``w_shape`` is ``(C_out, C_in/g, *k)`` for a normal conv and ``(C_in, C_out/g, *k)`` for a transposed
    one; in both cases each position of the "input side" map meets ``w_shape[0] * w_shape[1] * prod(k)``
    weights, which is ``out_numel * C_in/g * prod(k)`` for the normal conv (paper Sec. 2:
    ``B = h*w*c1*c2/g`` for a 1x1 conv). Same formula as ``torch.utils.flop_counter`` divided by 2.
    """
    spatial = (x_shape if transposed else out_shape)[2:]
    return x_shape[0] * prod(spatial) * w_shape[0] * w_shape[1] * prod(w_shape[2:])


def matmul_flops(a_shape: Shape, b_shape: Shape) -> int:
    """Multiply-adds of ``(*batch, m, k) @ (*batch, k, n)``: ``prod(batch) * m * n * k`` (mm, bmm, addmm)."""
    *batch, m, k = a_shape
    n = b_shape[-1]
    return prod(batch) * m * n * k


def linear_flops(x_shape: Shape, w_shape: Shape) -> int:
    """Multiply-adds of ``x @ W.T`` with ``W`` of shape ``(out_features, in_features)``."""
    return numel(x_shape[:-1]) * w_shape[0] * w_shape[1]


def attention_flops(q_shape: Shape, k_shape: Shape, v_shape: Shape) -> int:
    """Multiply-adds of the two matrix products of scaled dot-product attention (softmax not counted).

    ``q`` is ``(*b, L, E)``, ``k`` is ``(*b, S, E)``, ``v`` is ``(*b, S, Ev)``: ``b*L*S*E + b*L*S*Ev``.
    """
    *batch, seq_q, emb = q_shape
    seq_k = k_shape[-2]
    return prod(batch) * seq_q * seq_k * (emb + v_shape[-1])


def attention_flops_bshd(q_shape: Shape, k_shape: Shape, v_shape: Shape) -> int:
    """Like :func:`attention_flops` for the ``(B, L, H, E)`` layout of the flash/efficient attention kernels.

    ``k``/``v`` may have fewer heads than ``q`` (grouped-query attention): every query head still meets
    all ``S`` keys, so it is ``B * H_q * L * S * (E + Ev)``.
    """
    batch, seq_q, heads, emb = q_shape
    return batch * heads * seq_q * k_shape[1] * (emb + v_shape[-1])


def mha_flops(batch: int, seq_q: int, seq_k: int, embed: int) -> int:
    """Multiply-adds of ``nn.MultiheadAttention`` (packed in-projection, embed dim ``E`` everywhere).

    In-projection of the queries (``E*E`` per query token) and of the keys and values (``2*E*E`` per key
    token), ``Q K^T`` and ``attn . V`` (``L_q*L_k*E`` each: ``E/H`` per head summed over ``H`` heads) and the
    out-projection (``E*E`` per query token); softmax and scaling are not multiply-adds.
    """
    return batch * (2 * seq_q * embed * embed + 2 * seq_k * embed * embed + 2 * seq_q * seq_k * embed)


def mha_mac(batch: int, seq_q: int, seq_k: int, embed: int, heads: int, *, inputs: int, weights: int,
            mask: int = 0, need_weights: bool = False, average_weights: bool = True) -> int:
    """Memory access of ``nn.MultiheadAttention`` as the kernels it runs, each reading its operands once.

    ``inputs`` = elements of the distinct query/key/value tensors, ``weights`` = in- and out-projection
    weights and biases. The in-projection reads inputs + weights and writes q, k, v (``P`` elements); the
    head split copies them (reads and writes ``P``); fused attention reads q, k, v and the mask and
    writes the context (``C = B*L_q*E``); the out-projection reads ``C`` and writes ``C``. With
    ``need_weights`` the ``B*H*L_q*L_k`` scores are materialised: written by ``Q K^T``, read and written by
    softmax, read by ``attn . V`` (and read once more to average them over heads, writing ``B*L_q*L_k``).
    At batch 1 this equals the sum of the unfused path's rows (``addmm``, ``clone``, attention, ``addmm``);
    with a batch-first batch above 1 the unfused path costs more, by its input transposes and separate
    bias adds, which the fused kernel does not run.
    """
    proj = batch * (seq_q + 2 * seq_k) * embed
    ctx = batch * seq_q * embed
    total = (inputs + weights + proj) + 2 * proj + (proj + mask + ctx) + 2 * ctx
    if need_weights:
        scores = batch * heads * seq_q * seq_k
        total += 4 * scores + ((scores + batch * seq_q * seq_k) if average_weights else 0)
    return total


def per_element_flops(shape: Shape, per_element: int = 1) -> int:
    """``per_element`` operations per element (activations, element-wise arithmetic, eval-mode BN = 2)."""
    return numel(shape) * per_element


def window_pool_flops(out_shape: Shape, kernel: Sequence[int]) -> int:
    """Sliding-window pooling: each output element looks at ``prod(kernel)`` inputs."""
    return numel(out_shape) * prod(kernel)


def reduce_flops(in_shape: Shape) -> int:
    """Global/adaptive pooling and ``mean`` over dims: each input element is accumulated once."""
    return numel(in_shape)


# --- MAC (elements read + written) -----------------------------------------------------------------


def io_elements(reads: Iterable[Shape], writes: Iterable[Shape]) -> int:
    """Elements read plus elements written, each listed tensor once."""
    return sum(numel(s) for s in reads) + sum(numel(s) for s in writes)


def conv_mac(x_shape: Shape, w_shape: Shape, out_shape: Shape, bias: bool = False) -> int:
    """Convolution: input + weight + bias + output (paper Sec. 2, G1: ``hw(c1+c2) + c1*c2/g`` for 1x1)."""
    return numel(x_shape) + numel(w_shape) + numel(out_shape) + (out_shape[1] if bias else 0)


def linear_mac(x_shape: Shape, w_shape: Shape, out_shape: Shape, bias: bool = False) -> int:
    """Linear layer: input + weight + bias + output."""
    return numel(x_shape) + numel(w_shape) + numel(out_shape) + (w_shape[0] if bias else 0)


def batch_norm_mac(x_shape: Shape, n_stats: int = 4) -> int:
    """Batch norm over channel dim 1: input + output + ``n_stats * C`` (mean, var, weight, bias)."""
    return 2 * numel(x_shape) + n_stats * x_shape[1]


def elementwise_mac(in_shapes: Iterable[Shape], out_shape: Shape) -> int:
    """Element-wise op (ReLU, add, mul, ...): every tensor operand read once, the output written once.

    An in-place op (``relu_``) reads its input and writes it back, so it costs the same as the
    out-of-place one. Python scalars are free.
    """
    return io_elements(in_shapes, [out_shape])


def copy_mac(in_shape: Shape, out_shape: Shape | None = None) -> int:
    """A copy (``clone``/``contiguous``, ``copy_``, dtype casts): read everything, write everything."""
    return numel(in_shape) + numel(in_shape if out_shape is None else out_shape)


def cat_mac(in_shapes: Sequence[Shape], out_shape: Shape | None = None) -> int:
    """Concatenation: read every input, write the output (paper G1/G4: concat is not free).

    Each listed input is read, repeats included: ``cat([x, x])`` copies ``x`` twice, so it costs ``4n``.
    """
    written = sum(numel(s) for s in in_shapes) if out_shape is None else numel(out_shape)
    return sum(numel(s) for s in in_shapes) + written


def pool_mac(in_shape: Shape, out_shape: Shape) -> int:
    """Pooling and reductions: the input read once, the output written once."""
    return numel(in_shape) + numel(out_shape)


def view_mac(*_shapes: Shape) -> int:
    """Pure views (view, transpose, split/chunk, slice, ...) move no data: 0."""
    return 0


def channel_shuffle_mac(shape: Shape) -> int:
    """``view -> transpose -> contiguous -> view``: only ``contiguous`` copies, so ``2 * numel``."""
    return 2 * numel(shape)
