"""The profiler plumbing of :func:`shufflenet.measure.profile.profile`: a quiet ``torch.profiler`` session,
the attribution pass (which module each top-level op ran in) and the timing pass (per-forward op times).

Steps 1 and 2 of the method in :mod:`shufflenet.measure.profile`: the ``record_function`` ranges opened
here are named ``MODULE_PREFIX + module path`` (one per module call, attribution pass only) and
``FORWARD_PREFIX + index`` (one per forward pass).
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity
from torch.profiler import profile as torch_profile

from shufflenet.errors import ShuffleNetError
from shufflenet.measure import optypes

ROOT = "(root)"  # the cost engine's name for the model itself
MODULE_PREFIX = "shufflenet.module::"
FORWARD_PREFIX = "shufflenet.forward::"


@dataclass
class TopOp:
    """A top-level op of the attribution pass."""

    name: str
    module: str
    subtree: list[str]
    input_rank: int | None
    reads_shuffle: bool = False  # its module was called on a ChannelShuffle / ShuffleSplit output


def activities(dev: torch.device) -> list[ProfilerActivity]:
    acts = [ProfilerActivity.CPU]
    if dev.type == "cuda":
        acts.append(ProfilerActivity.CUDA)
    return acts


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block: Kineto prints "profiler_start"/"profiler_stop" (and, on
    CUDA builds without a GPU, a device-count error) there on every start and stop."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextmanager
def quiet_profiler(dev: torch.device, record_shapes: bool = False) -> Iterator[Any]:
    """``torch.profiler.profile`` whose start and stop are quiet; the profiled code keeps its stderr."""
    prof = torch_profile(activities=activities(dev), record_shapes=record_shapes)
    with native_stderr_silenced():
        prof.__enter__()
    try:
        yield prof
    finally:
        with native_stderr_silenced():
            prof.__exit__(None, None, None)


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def count_nested(ev: Any) -> int:
    """Events nested under ``ev`` (not counting ``ev``)."""
    return sum(1 + count_nested(c) for c in ev.cpu_children)


def subtree_names(ev: Any) -> list[str]:
    out = [optypes.short_name(ev.name)]
    for c in ev.cpu_children:
        out += subtree_names(c)
    return out


def duration_us(ev: Any) -> float:
    return float(ev.time_range.end - ev.time_range.start)


def ranges(events: Any, prefix: str) -> list[Any]:
    found = [e for e in events if e.name.startswith(prefix)]
    found.sort(key=lambda e: e.time_range.start)
    return found


def attribution_pass(net: nn.Module, x: torch.Tensor,
                     dev: torch.device) -> tuple[list[TopOp], dict[str, str]]:
    """One profiled forward with a range per module: the top-level ops and the module each ran in."""
    types = {(name or ROOT): type(m).__name__ for name, m in net.named_modules()}
    stack: list[Any] = []
    # Outputs of shuffle modules (they are views: the copy happens in whichever op reads them first).
    shuffled: dict[int, Any] = {}
    reads_shuffle: set[str] = set()

    def pre(label: str, module: nn.Module, args: Any) -> None:
        if any(isinstance(a, torch.Tensor) and (r := shuffled.get(id(a))) is not None and r() is a for a in args):
            reads_shuffle.add(label)
        rf = record_function(MODULE_PREFIX + label)
        rf.__enter__()
        stack.append(rf)

    def post(module: nn.Module, args: Any, out: Any) -> None:
        if stack:
            stack.pop().__exit__(None, None, None)
        if type(module).__name__ in optypes.SHUFFLE_MODULES:
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    shuffled[id(t)] = weakref.ref(t)

    hooks = []
    try:
        for name, m in net.named_modules():
            label = name or ROOT
            hooks.append(m.register_forward_pre_hook(lambda mod, a, label=label: pre(label, mod, a)))
            hooks.append(m.register_forward_hook(post, always_call=True))
        with quiet_profiler(dev, record_shapes=True) as prof:
            with record_function(FORWARD_PREFIX + "0"):
                net(x)
                sync(dev)
    finally:
        for h in hooks:
            h.remove()
    forward = ranges(prof.events(), FORWARD_PREFIX)[0]
    tops: list[TopOp] = []

    def walk(ev: Any, module: str) -> None:
        for c in sorted(ev.cpu_children, key=lambda e: e.time_range.start):
            if c.name.startswith(MODULE_PREFIX):
                walk(c, c.name[len(MODULE_PREFIX):])
            else:
                shapes = getattr(c, "input_shapes", None) or []
                rank = len(shapes[0]) if shapes and isinstance(shapes[0], (list, tuple)) else None
                tops.append(TopOp(c.name, module, subtree_names(c), rank, module in reads_shuffle))

    walk(forward, ROOT)
    return tops, types


@dataclass
class Forwards:
    """Profiled forwards: per forward the top-level op times (us; CPU interval, or on CUDA the op's kernel
    time), their nested event counts, the forward range (us) and the calling thread's CPU time / wall time
    (below 1 when another process took the CPU away during that forward)."""

    names: list[str]
    times: list[list[float]] = field(default_factory=list)
    nested: list[list[int]] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    cpu_ratio: list[float] = field(default_factory=list)
    # ``aten::contiguous`` calls nested in a top-level op (e.g. a conv making its strided input dense):
    # their time (us) and their events (themselves + nested), per forward and op.
    copy_times: list[list[float]] = field(default_factory=list)
    copy_events: list[list[int]] = field(default_factory=list)

    def extend(self, other: Forwards) -> None:
        if other.names != self.names:
            raise ShuffleNetError("the model ran a different sequence of ops in two forward passes; "
                                  "profile needs a deterministic forward")
        for name in ("times", "nested", "walls", "cpu_ratio", "copy_times", "copy_events"):
            getattr(self, name).extend(getattr(other, name))


def op_us(ev: Any, dev: torch.device) -> float:
    """An op's time (us): its CPU interval, or on CUDA the duration of the kernels it launched."""
    return float(ev.device_time_total) if dev.type == "cuda" else duration_us(ev)


def nested_copies(ev: Any) -> list[Any]:
    """The outermost ``aten::contiguous`` events below ``ev`` (a layout copy an op makes of its input)."""
    out = []
    for c in ev.cpu_children:
        out += [c] if c.name == "aten::contiguous" else nested_copies(c)
    return out


def timing_pass(net: nn.Module, x: torch.Tensor, dev: torch.device, repeats: int) -> Forwards:
    """``repeats`` profiled forwards (plus one discarded first one, which pays the profiler's start-up)."""
    cpu, wall = [], []
    with quiet_profiler(dev) as prof:
        for i in range(repeats + 1):
            c0, w0 = time.thread_time(), time.perf_counter()
            with record_function(f"{FORWARD_PREFIX}{i}"):
                net(x)
                sync(dev)
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - w0)
    out: Forwards | None = None
    for j, fwd in enumerate(ranges(prof.events(), FORWARD_PREFIX)[1:], start=1):
        tops = sorted(fwd.cpu_children, key=lambda e: e.time_range.start)
        one = Forwards([t.name for t in tops])
        one.times.append([op_us(t, dev) for t in tops])
        one.nested.append([count_nested(t) for t in tops])
        copies = [nested_copies(t) for t in tops]
        one.copy_times.append([sum(op_us(c, dev) for c in cs) for cs in copies])
        one.copy_events.append([sum(1 + count_nested(c) for c in cs) for cs in copies])
        one.walls.append(duration_us(fwd))
        one.cpu_ratio.append(cpu[j] / wall[j] if wall[j] > 0 else 0.0)
        if out is None:
            out = one
        else:
            out.extend(one)
    if out is None:
        raise ShuffleNetError("the profiler recorded no forward pass")
    return out

