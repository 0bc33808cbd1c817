"""Rule tables: which aten op costs what, in FLOPs and in MAC.

The design is fvcore's handle table (style-anchors Sec. 3) moved onto the dispatcher, with **two tables
and a separate ignore set per table**: the ops that cost zero FLOPs (cat, split, contiguous, ReLU, ...)
are exactly the ops the paper's G1/G4 say cost memory access, so "zero" must be decided per statistic.

- ``FLOP_RULES``: multiply-adds of conv and matrix products (the paper's FLOPs, V2 footnote 1).
- ``ELEMENTWISE_FLOP_RULES``: used on top when ``count_elementwise_flops=True`` (BN, activations,
  element-wise arithmetic, pooling).
- ``MAC_RULES``: elements read + written (paper Sec. 2).
- ``FLOP_IGNORE`` / ``MAC_IGNORE``: ops that truly cost zero for that statistic. An op that is neither
  ruled nor ignored by a table is reported in ``CostReport.unsupported_ops``, never counted as zero.

Repeated operands: "each tensor read once per op" (ARCHITECTURE.md, the paper's G1 cache assumption)
holds for ops that stream their operands together -- ``add(x, x)``, ``mul(x, x)``, ``mm(a, a)`` load
both operands from the same addresses in the same pass, so ``x`` is read once (``add(x, x)`` = 2n).
Concatenation (``cat``/``stack`` and aliases) is the exception: it copies its inputs one after the
other, so every occurrence is a separate read (``cat([x, x])`` = 4n, ``cat([x, y])`` = 2(n_x + n_y)).

Fused multi-head attention (``_native_multi_head_attention``, the ``nn.MultiheadAttention`` fast path
under ``no_grad``, and ``_transformer_encoder_layer_fwd``, the ``nn.TransformerEncoderLayer`` one) is
priced as the kernels it runs: the same FLOPs as the unfused path, and at batch 1 the same MAC (the
unfused path adds transposes and bias adds for batch-first batches above 1).

A rule is ``fn(args, kwargs, out)`` called with the op's real arguments and result. A FLOP rule returns
an ``int``; a MAC rule returns ``(elements, bytes)`` or just ``elements`` (bytes then use the element
size of the first output). Tables are keyed by ``OpOverloadPacket`` (all overloads) or ``OpOverload``
(one overload, which wins). Extend them with :func:`register_flop_rule`, :func:`register_mac_rule` and
:func:`ignore_ops`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch._ops import OpOverload, OpOverloadPacket

from shufflenet.cost import handles
from shufflenet.errors import UserInputError

aten = torch.ops.aten
Tensor = torch.Tensor

OpKey = OpOverload | OpOverloadPacket
FlopRule = Callable[[tuple, dict, Any], int]
MacRule = Callable[[tuple, dict, Any], int | tuple[int, int]]
KindRule = str | Callable[[tuple], str]


def _ops(*names: str) -> list[OpOverloadPacket]:
    """Aten packets by name, skipping names this torch build does not have."""
    return [getattr(aten, n) for n in names if hasattr(aten, n)]


def _first(out: Any) -> Tensor:
    return out if isinstance(out, Tensor) else out[0]


def _access(reads: Iterable[Any], writes: Iterable[Any], *, each_occurrence: bool = False) -> tuple[int, int]:
    """(elements, bytes) of the tensors read plus the tensors written.

    A tensor passed twice is read once, unless ``each_occurrence`` (concatenation: one copy per input).
    """
    elems = nbytes = 0
    seen: set[int] = set()
    for t in reads:
        if isinstance(t, Tensor) and (each_occurrence or id(t) not in seen):
            seen.add(id(t))
            n = t.numel()
            elems += n
            nbytes += n * t.element_size()
    for t in writes:
        if isinstance(t, Tensor):
            n = t.numel()
            elems += n
            nbytes += n * t.element_size()
    return elems, nbytes


def _operands(args: tuple, kwargs: dict) -> list[Any]:
    if not kwargs:
        return list(args)
    return list(args) + [v for k, v in kwargs.items() if k != "out"]


def _outputs(out: Any) -> Iterable[Any]:
    return (out,) if isinstance(out, Tensor) else out


# --- MAC rules -------------------------------------------------------------------------------------


def mac_read_all_write_all(args: tuple, kwargs: dict, out: Any) -> tuple[int, int]:
    """Element-wise ops, in place or not: every tensor operand read once, every output written."""
    return _access(_operands(args, kwargs), _outputs(out))


def mac_read_all_write_first(args: tuple, kwargs: dict, out: Any) -> tuple[int, int]:
    """Conv, matmul, norms (weights and running stats are operands): operands + the main output.

    Auxiliary outputs (BN's saved mean/invstd, attention's logsumexp) are not counted.
    """
    return _access(_operands(args, kwargs), (_first(out),))


def mac_read_first_write_first(args: tuple, kwargs: dict, out: Any) -> tuple[int, int]:
    """Copies, casts, padding, pooling, reductions: input read once, main output written once.

    Max-pool indices are not counted (they are only written when autograd needs them).
    """
    return _access((args[0],), (_first(out),))


def mac_cat(args: tuple, kwargs: dict, out: Any) -> tuple[int, int]:
    """``cat``/``stack``: every input occurrence read (``cat([x, x])`` copies x twice), the output written
    (handles.cat_mac)."""
    return _access(args[0], (out,), each_occurrence=True)


def mac_copy_(args: tuple, kwargs: dict, out: Any) -> tuple[int, int]:
    """``dst.copy_(src)``: src read, dst written (dst is not read)."""
    return _access((args[1],), (args[0],))


def mac_write_only(args: tuple, kwargs: dict, out: Any) -> tuple[int, int]:
    """``fill_``/``zero_``: the tensor is written, nothing read."""
    return _access((), (args[0],))


def mac_gather(args: tuple, kwargs: dict, out: Any) -> tuple[int, int]:
    """Embedding/index_select/gather: the gathered rows (= output size) and the indices read, output
    written."""
    o = _first(out)
    idx = [a for a in args[1:] if isinstance(a, Tensor)]
    elems, nbytes = _access(idx, (o, o))
    return elems, nbytes


# --- FLOP rules (multiply-adds) --------------------------------------------------------------------


def flop_conv(args: tuple, kwargs: dict, out: Any) -> int:
    """``convolution``/``_convolution(input, weight, bias, stride, padding, dilation, transposed, ...)``."""
    return handles.conv_flops(args[0].shape, args[1].shape, out.shape, bool(args[6]))


def flop_mm(args: tuple, kwargs: dict, out: Any) -> int:
    return handles.matmul_flops(args[0].shape, args[1].shape)


def flop_addmm(args: tuple, kwargs: dict, out: Any) -> int:
    """``addmm(bias, a, b)`` / ``baddbmm``: the bias addition is not counted."""
    return handles.matmul_flops(args[1].shape, args[2].shape)


def flop_linear(args: tuple, kwargs: dict, out: Any) -> int:
    return handles.linear_flops(args[0].shape, args[1].shape)


def flop_attention(args: tuple, kwargs: dict, out: Any) -> int:
    return handles.attention_flops(args[0].shape, args[1].shape, args[2].shape)


def flop_attention_bshd(args: tuple, kwargs: dict, out: Any) -> int:
    """``_flash_attention_forward``/``_efficient_attention_forward``: ``(B, L, H, E)`` operands; packed
    variable-length batches (``cu_seqlens_q/k`` given) count each sequence against its own keys only."""
    q, k, v = args[0], args[1], args[2]
    cu_q, cu_k = args[3], args[4]
    if isinstance(cu_q, Tensor) and isinstance(cu_k, Tensor):
        lq, lk = cu_q.diff().tolist(), cu_k.diff().tolist()
        return sum(a * b for a, b in zip(lq, lk, strict=True)) * q.shape[2] * (q.shape[3] + v.shape[-1])
    return handles.attention_flops_bshd(q.shape, k.shape, v.shape)


def _mha_shapes(q: Tensor, k: Tensor) -> tuple[int, int, int, int]:
    """(batch, L_q, L_k, E) of (batch-first or unbatched) multi-head attention inputs."""
    batch = handles.numel(q.shape[:-2])
    return batch, q.shape[-2], k.shape[-2], q.shape[-1]


def flop_native_mha(args: tuple, kwargs: dict, out: Any) -> int:
    """``_native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, ...)``."""
    return handles.mha_flops(*_mha_shapes(args[0], args[1]))


def _mha_mac(query: Tensor, key: Tensor, value: Tensor, heads: int, weights: Iterable[Any], mask: Any,
             need_weights: bool, average: bool) -> int:
    inputs, _ = _access((query, key, value), ())
    weight_elems, _ = _access(weights, ())
    batch, seq_q, seq_k, embed = _mha_shapes(query, key)
    return handles.mha_mac(batch, seq_q, seq_k, embed, heads, inputs=inputs, weights=weight_elems,
                           mask=mask.numel() if isinstance(mask, Tensor) else 0, need_weights=need_weights,
                           average_weights=average)


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def mac_native_mha(args: tuple, kwargs: dict, out: Any) -> tuple[int, int]:
    """See handles.mha_mac: in-projection, head split, attention, out-projection (+ the scores when
    ``need_weights``)."""
    q = args[0]
    need = bool(_arg(args, kwargs, 10, "need_weights", True))
    elems = _mha_mac(q, args[1], args[2], args[4], args[5:9], _arg(args, kwargs, 9, "mask", None), need,
                     bool(_arg(args, kwargs, 11, "average_attn_weights", True)))
    return elems, elems * q.element_size()


def flop_encoder_layer(args: tuple, kwargs: dict, out: Any) -> int:
    """``_transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_w, qkv_b, proj_w, proj_b, use_gelu,
    norm_first, eps, norm_w1, norm_b1, norm_w2, norm_b2, ffn_w1, ffn_b1, ffn_w2, ffn_b2, mask, ...)``:
    self-attention plus the two feed-forward linears."""
    src, ffn_w1 = args[0], args[14]
    batch, seq, _, embed = _mha_shapes(src, src)
    return handles.mha_flops(batch, seq, seq, embed) + 2 * batch * seq * embed * ffn_w1.shape[0]


def mac_encoder_layer(args: tuple, kwargs: dict, out: Any) -> tuple[int, int]:
    """The unfused layer's kernels: 2 layer norms, self-attention (handles.mha_mac), 2 residual adds,
    2 feed-forward linears and the activation between them, each reading its operands once."""
    src = args[0]
    n = src.numel()
    ffn_w1, ffn_b1, ffn_w2, ffn_b2 = args[14:18]
    hidden = n // src.shape[-1] * ffn_w1.shape[0]
    attn = _mha_mac(src, src, src, args[2], args[3:7], _arg(args, kwargs, 18, "mask", None), False, True)
    norms = 2 * (2 * n + args[10].numel() + args[11].numel())
    adds = 2 * 3 * n
    ffn1 = n + ffn_w1.numel() + ffn_b1.numel() + hidden
    ffn2 = hidden + ffn_w2.numel() + ffn_b2.numel() + n
    ffn = ffn1 + 2 * hidden + ffn2  # the activation between them reads and writes the hidden map
    elems = attn + norms + adds + ffn
    return elems, elems * src.element_size()


def flop_per_output(args: tuple, kwargs: dict, out: Any) -> int:
    """One operation per output element (activations, add, mul, ...)."""
    return _first(out).numel()


def flop_norm(args: tuple, kwargs: dict, out: Any) -> int:
    """Two per element (the eval-mode scale and shift; statistics are not counted)."""
    return handles.per_element_flops(_first(out).shape, 2)


def flop_window_pool(args: tuple, kwargs: dict, out: Any) -> int:
    """Max/avg pooling: ``prod(kernel)`` per output element; a 1-element kernel list means square."""
    o = _first(out)
    kernel = list(args[1])
    n_spatial = o.dim() - 2 if o.dim() > 2 else o.dim() - 1
    if len(kernel) == 1:
        kernel = kernel * max(n_spatial, 1)
    return handles.window_pool_flops(o.shape, kernel)


def flop_reduce(args: tuple, kwargs: dict, out: Any) -> int:
    """Adaptive/global pooling and reductions: one accumulation per input element."""
    return handles.reduce_flops(args[0].shape)


# --- kinds -----------------------------------------------------------------------------------------


def conv_kind(args: tuple) -> str:
    """"dwconv" when groups == C_in > 1, "gconv" when 1 < groups < C_in, else "conv"."""
    groups = args[8]
    if groups <= 1:
        return "conv"
    return "dwconv" if groups == args[0].shape[1] else "gconv"


# --- op families -----------------------------------------------------------------------------------

CONV_OPS = _ops("convolution", "_convolution", "convolution_overrideable")
MATMUL_OPS = _ops("mm", "bmm")
ADDMM_OPS = _ops("addmm", "baddbmm")
LINEAR_OPS = _ops("linear")
ATTENTION_OPS = _ops(
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
    "_scaled_dot_product_attention_math_for_mps",
)
ATTENTION_BSHD_OPS = _ops("_flash_attention_forward", "_efficient_attention_forward")
MHA_OPS = _ops("_native_multi_head_attention")
ENCODER_LAYER_OPS = _ops("_transformer_encoder_layer_fwd")
BATCH_NORM_OPS = _ops(
    "_native_batch_norm_legit_no_training",
    "native_batch_norm",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_functional",
    "cudnn_batch_norm",
    "miopen_batch_norm",
)
NORM_OPS = BATCH_NORM_OPS + _ops("native_layer_norm", "native_group_norm", "_fused_rms_norm")
# Activations a deploy runtime fuses into the conv/linear that feeds them (a conv "post-op").
FUSABLE_ACT_OPS = _ops(
    "relu", "relu_", "hardtanh", "hardtanh_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_",
    "silu", "silu_", "sigmoid", "sigmoid_", "gelu", "gelu_", "tanh", "tanh_", "elu", "elu_",
    "leaky_relu", "leaky_relu_", "mish", "mish_", "clamp", "clamp_", "clamp_min", "clamp_min_",
    "clamp_max", "clamp_max_",
)
ACT_OPS = FUSABLE_ACT_OPS + _ops(
    "threshold", "threshold_", "softplus", "celu", "celu_", "_prelu_kernel", "prelu", "glu", "_softmax",
    "_safe_softmax", "_masked_softmax",
    "_log_softmax", "log_sigmoid_forward", "softshrink", "hardshrink", "rrelu_with_noise",
)
ELEMENTWISE_OPS = _ops(
    "add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "neg", "neg_", "abs", "abs_",
    "exp", "exp_", "log", "log_", "sqrt", "sqrt_", "rsqrt", "rsqrt_", "reciprocal", "reciprocal_",
    "pow", "pow_", "square", "sign", "floor", "ceil", "round", "trunc", "frac", "sin", "cos", "erf",
    "erfinv", "log1p", "expm1", "maximum", "minimum", "fmod", "remainder", "where", "addcmul",
    "addcmul_", "addcdiv", "addcdiv_", "lerp", "lerp_", "eq", "ne", "gt", "lt", "ge", "le",
    "logical_and", "logical_or", "logical_not", "bitwise_and", "bitwise_or", "bitwise_not",
    "masked_fill", "masked_fill_", "isnan", "isinf", "native_dropout", "bernoulli", "bernoulli_",
    "nan_to_num", "atan2", "hypot", "xlogy",
)
WINDOW_POOL_OPS = _ops(
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "max_pool3d_with_indices",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
)
REDUCE_OPS = _ops(
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "_adaptive_avg_pool2d",
    "_adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "mean", "sum", "amax", "amin", "var", "std", "var_mean", "std_mean", "prod",
    "logsumexp", "norm", "linalg_vector_norm", "argmax", "argmin", "cumsum",
)
COPY_OPS = _ops(
    "clone", "_to_copy", "constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d",
    "replication_pad1d", "replication_pad2d", "replication_pad3d", "_reshape_copy", "repeat", "roll",
    "flip", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle", "tril",
    "triu", "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "upsample_bilinear2d",
    "upsample_bicubic2d", "upsample_linear1d", "upsample_trilinear3d", "_upsample_nearest_exact2d",
    "_upsample_bilinear2d_aa", "col2im", "im2col", "expand_copy", "permute_copy", "view_copy",
    "transpose_copy", "t_copy", "alias_copy", "detach_copy", "slice_copy", "select_copy",
    "unsqueeze_copy", "squeeze_copy", "as_strided_copy", "resolve_conj", "resolve_neg",
)
CAT_OPS = _ops("cat", "stack", "hstack", "vstack", "concat", "concatenate")
GATHER_OPS = _ops("embedding", "index_select", "gather", "index")
# ``max``/``min`` are reductions (``.dim``, ``.default``) or binary element-wise (``.other``).
REDUCE_OPS += [aten.max.dim, aten.max.default, aten.min.dim, aten.min.default]
ELEMENTWISE_OPS += [aten.max.other, aten.min.other]
WRITE_ONLY_OPS = _ops("fill_", "zero_", "fill", "normal_", "uniform_", "random_")

# Pure views and metadata: no data moves (ARCHITECTURE.md: views cost 0). A copying ``reshape`` reaches
# the dispatcher as ``clone`` + ``_unsafe_view``, so the copy is still charged, to ``clone``.
VIEW_OPS = _ops(
    "view", "_unsafe_view", "reshape", "_reshape_alias", "transpose", "transpose_", "permute", "t", "t_",
    "expand", "expand_as", "slice", "select", "split", "split_with_sizes", "tensor_split", "chunk",
    "unbind", "unsqueeze", "unsqueeze_", "squeeze", "squeeze_", "alias", "detach", "detach_",
    "as_strided", "as_strided_", "narrow", "unfold", "view_as", "diagonal", "movedim", "swapaxes",
    "flatten", "unflatten", "lift_fresh", "view_as_real", "view_as_complex", "real", "imag",
    "_neg_view", "_conj", "conj", "numpy_T", "mT", "mH", "_nested_view_from_buffer",
)
# Allocation, RNG-free factories, metadata queries and assertions: nothing is read, and writing a
# freshly allocated constant is not part of the network's data flow (spec: factories cost 0).
FACTORY_OPS = _ops(
    "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full",
    "full_like", "arange", "linspace", "logspace", "randn", "rand", "randint", "randn_like",
    "rand_like", "randint_like", "randperm", "normal", "scalar_tensor", "new_empty",
    "new_empty_strided", "new_zeros", "new_ones", "new_full", "eye", "lift_fresh_copy",
    "_local_scalar_dense", "sym_size", "sym_stride", "sym_numel", "sym_storage_offset",
    "_assert_async", "_assert_tensor_metadata", "_functional_assert_async", "record_stream", "set_",
    "resize_", "resize_as_", "is_same_size", "is_nonzero", "_has_same_storage_numel",
    "_resize_output_", "_make_dep_token",
)

# --- the tables ------------------------------------------------------------------------------------

FLOP_RULES: dict[OpKey, FlopRule] = {}
ELEMENTWISE_FLOP_RULES: dict[OpKey, FlopRule] = {}
MAC_RULES: dict[OpKey, MacRule] = {}
FLOP_IGNORE: set[OpKey] = set()
MAC_IGNORE: set[OpKey] = set()
OP_KINDS: dict[OpKey, KindRule] = {}


def _fill(ops: Iterable[OpKey], table: dict, fn: Any) -> None:
    for op in ops:
        table[op] = fn


_fill(CONV_OPS, FLOP_RULES, flop_conv)
_fill(MATMUL_OPS, FLOP_RULES, flop_mm)
_fill(ADDMM_OPS, FLOP_RULES, flop_addmm)
_fill(LINEAR_OPS, FLOP_RULES, flop_linear)
_fill(ATTENTION_OPS, FLOP_RULES, flop_attention)
_fill(ATTENTION_BSHD_OPS, FLOP_RULES, flop_attention_bshd)
_fill(MHA_OPS, FLOP_RULES, flop_native_mha)
_fill(ENCODER_LAYER_OPS, FLOP_RULES, flop_encoder_layer)
_fill(MHA_OPS, MAC_RULES, mac_native_mha)
_fill(ENCODER_LAYER_OPS, MAC_RULES, mac_encoder_layer)

_fill(NORM_OPS, ELEMENTWISE_FLOP_RULES, flop_norm)
_fill(ACT_OPS + ELEMENTWISE_OPS, ELEMENTWISE_FLOP_RULES, flop_per_output)
_fill(WINDOW_POOL_OPS, ELEMENTWISE_FLOP_RULES, flop_window_pool)
_fill(REDUCE_OPS, ELEMENTWISE_FLOP_RULES, flop_reduce)

_fill(CONV_OPS + MATMUL_OPS + ADDMM_OPS + LINEAR_OPS + ATTENTION_OPS + ATTENTION_BSHD_OPS + NORM_OPS,
      MAC_RULES, mac_read_all_write_first)
_fill(ACT_OPS + ELEMENTWISE_OPS, MAC_RULES, mac_read_all_write_all)
_fill(WINDOW_POOL_OPS + REDUCE_OPS + COPY_OPS, MAC_RULES, mac_read_first_write_first)
_fill(CAT_OPS, MAC_RULES, mac_cat)
_fill(GATHER_OPS, MAC_RULES, mac_gather)
_fill(WRITE_ONLY_OPS, MAC_RULES, mac_write_only)
if hasattr(aten, "copy_"):
    MAC_RULES[aten.copy_] = mac_copy_
if hasattr(aten, "copy"):
    MAC_RULES[aten.copy] = mac_copy_

# Ops with no multiply-adds: zero in the paper's FLOPs (the element-wise table may still count them).
FLOP_IGNORE.update(
    VIEW_OPS, FACTORY_OPS, NORM_OPS, ACT_OPS, ELEMENTWISE_OPS, WINDOW_POOL_OPS, REDUCE_OPS, COPY_OPS,
    CAT_OPS, GATHER_OPS, WRITE_ONLY_OPS, _ops("copy_", "copy"),
)
MAC_IGNORE.update(VIEW_OPS, FACTORY_OPS)

_fill(CONV_OPS, OP_KINDS, conv_kind)
_fill(MATMUL_OPS + ADDMM_OPS + LINEAR_OPS + ATTENTION_OPS + ATTENTION_BSHD_OPS + MHA_OPS + ENCODER_LAYER_OPS,
      OP_KINDS, "linear")
_fill(NORM_OPS, OP_KINDS, "norm")
_fill(ACT_OPS, OP_KINDS, "act")
_fill(ELEMENTWISE_OPS, OP_KINDS, "elementwise")
_fill(WINDOW_POOL_OPS + REDUCE_OPS, OP_KINDS, "pool")
_fill(COPY_OPS + CAT_OPS + GATHER_OPS + WRITE_ONLY_OPS + _ops("copy_", "copy"), OP_KINDS, "data")


# --- registration ----------------------------------------------------------------------------------


def as_op_keys(ops: OpKey | str | Iterable[OpKey | str]) -> list[OpKey]:
    """Normalise ``aten.relu``, ``aten.add.Tensor``, ``"aten::relu"``, ``"relu"`` or a list of them."""
    if isinstance(ops, (str, OpOverload, OpOverloadPacket)):
        ops = [ops]
    keys: list[OpKey] = []
    for op in ops:
        if isinstance(op, str):
            ns, sep, rest = op.partition("::")
            if not sep:
                ns, rest = "aten", op
            name, _, overload = rest.partition(".")
            try:
                packet = getattr(getattr(torch.ops, ns), name)
                op = getattr(packet, overload) if overload else packet
            except (AttributeError, RuntimeError):
                raise UserInputError(f"unknown op {op!r}") from None
        if not isinstance(op, (OpOverload, OpOverloadPacket)):
            raise TypeError(f"not an op: {op!r}")
        keys.append(op)
    return keys


def register_flop_rule(
    ops: OpKey | str | Iterable[OpKey | str], fn: FlopRule | None, *, elementwise: bool = False,
    kind: KindRule | None = None,
) -> None:
    """Add or replace the FLOP rule of ``ops``; ``fn=None`` marks them as zero-FLOP (ignored).

    ``elementwise=True`` puts the rule in the table used only with ``count_elementwise_flops=True``
    (the op then counts zero paper FLOPs). ``kind`` sets the report category ("conv", "act", ...).
    """
    for op in as_op_keys(ops):
        if fn is None:
            FLOP_RULES.pop(op, None)
            ELEMENTWISE_FLOP_RULES.pop(op, None)
            FLOP_IGNORE.add(op)
        elif elementwise:
            ELEMENTWISE_FLOP_RULES[op] = fn
            FLOP_IGNORE.add(op)
        else:
            FLOP_RULES[op] = fn
            FLOP_IGNORE.discard(op)
        if kind is not None:
            OP_KINDS[op] = kind


def register_mac_rule(
    ops: OpKey | str | Iterable[OpKey | str], fn: MacRule | None, *, kind: KindRule | None = None
) -> None:
    """Add or replace the MAC rule of ``ops``; ``fn=None`` marks them as zero-MAC (pure views)."""
    for op in as_op_keys(ops):
        if fn is None:
            MAC_RULES.pop(op, None)
            MAC_IGNORE.add(op)
        else:
            MAC_RULES[op] = fn
            MAC_IGNORE.discard(op)
        if kind is not None:
            OP_KINDS[op] = kind


def ignore_ops(ops: OpKey | str | Iterable[OpKey | str], *, flops: bool = True, mac: bool = True) -> None:
    """Declare ops free for FLOPs and/or MAC (no row, not unsupported)."""
    if flops:
        register_flop_rule(ops, None)
    if mac:
        register_mac_rule(ops, None)


def lookup(table: dict | set, func: OpOverload) -> Any:
    """The overload's own entry if any, else its packet's; ``None`` when absent (sets: bool)."""
    if isinstance(table, set):
        return func in table or func.overloadpacket in table
    hit = table.get(func)
    return hit if hit is not None else table.get(func.overloadpacket)
