"""One process, several on one machine, or several machines: torchrun + DistributedDataParallel.

The same command works everywhere. Plain ``python``/``shufflenet train`` runs one process; under
``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) the
process group is initialised with NCCL on CUDA and gloo on CPU, each process uses ``cuda:LOCAL_RANK``
(GPU) and the model is wrapped in DDP. Only rank 0 logs and writes files.

    torchrun --standalone --nproc_per_node 4 -m shufflenet.cli.main train ...        # one machine
    torchrun --nnodes 2 --node_rank {0,1} --nproc_per_node 8 \\
             --rdzv_backend c10d --rdzv_endpoint HOST:29500 -m shufflenet.cli.main train ...  # two machines
"""

from __future__ import annotations

import atexit
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from shufflenet.errors import UserInputError


@dataclass
class DistContext:
    """Where this process stands: rank, world size, its device, and whether it owns the process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_reduce_(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """In-place all-reduce (sum/min/max) across ranks; the identity with one process."""
        if self.distributed:
            ops = {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}
            work = tensor.to(self.device) if self.backend == "nccl" else tensor
            dist.all_reduce(work, op=ops[op])
            if work is not tensor:
                tensor.copy_(work)
        return tensor


def env_ranks() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment; ``(0, 1, 0)`` without it."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise UserInputError(f"malformed torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {exc}") from None
    return rank, world, local


def resolve_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise UserInputError("device 'cuda' requested but CUDA is not available")
    if preference in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    return torch.device("cpu")


def setup(device: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Initialise the process group when launched by torchrun with ``WORLD_SIZE > 1``.

    If a process group already exists (the caller's, or one made by an earlier call) it is reused. A group
    made here stays up for later ``train``/``eval`` calls in the same process and is destroyed at exit:
    destroying and re-creating the default group under torchrun can deadlock on stale rendezvous keys.
    """
    rank, world, local = env_ranks()
    dev = resolve_device(device, local)
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), local, dev, dist.get_backend(), False)
    if world <= 1:
        return DistContext(0, 1, 0, dev, None, False)
    if not dist.is_available():  # pragma: no cover - builds without torch.distributed
        raise UserInputError("this PyTorch build has no torch.distributed; run with one process")
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s),
                            **({"device_id": dev} if dev.type == "cuda" else {}))
    atexit.register(_destroy_at_exit)
    return DistContext(dist.get_rank(), dist.get_world_size(), local, dev, backend, True)


def _destroy_at_exit() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def cleanup(ctx: DistContext) -> None:
    """End of a ``train``/``eval`` call: wait for the other ranks (the group itself stays up, see
    :func:`setup`)."""
    if ctx.distributed and dist.is_initialized():
        dist.barrier()


def wrap_model(model: nn.Module, ctx: DistContext, *, sync_bn: bool = False) -> nn.Module:
    """DDP-wrap ``model`` (already on ``ctx.device``) when distributed; optionally with SyncBatchNorm."""
    if not ctx.distributed:
        return model
    if sync_bn:
        if ctx.device.type != "cuda":
            raise UserInputError("sync_bn needs CUDA (PyTorch's SyncBatchNorm does not run on CPU); "
                                 "use freeze_bn for an exact CPU equivalence, or plain BN")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DDP(model, device_ids=ids, output_device=ctx.device.index if ids else None)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP (or ``torch.compile``) wrappers."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    while True:
        if isinstance(model, (DDP, nn.DataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model
