"""The official ShuffleNet training recipe (ShuffleNet V1 paper Sec. 4, whose settings the V2 paper keeps;
megvii ShuffleNetV2/train.py).

* SGD, momentum 0.9, peak lr 0.5 at batch 1024, scaled linearly with the global batch;
* weight decay 4e-5 on conv/linear weights only (parameters with ``dim > 1``); BN parameters and biases
  get none (the official ``get_parameters``);
* the lr decays linearly to 0 per iteration (``LambdaLR`` with ``1 - step / total_steps``), optionally
  after a linear warm-up (not in the official recipe);
* cross-entropy with label smoothing 0.1;
* at the end, one pass over the training data re-estimates the BN statistics with a cumulative average
  (``momentum=None``; the official ``bnps`` pass with momentum ``1/iter``) while the weights stay fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from shufflenet.train.config import BASE_BATCH, BASE_LR

MOMENTUM = 0.9
WEIGHT_DECAY = 4e-5
LABEL_SMOOTHING = 0.1


def scaled_lr(batch_size: int, base_lr: float = BASE_LR, base_batch: int = BASE_BATCH) -> float:
    """The linear scaling rule: ``base_lr * batch_size / base_batch`` (0.5 at 1024)."""
    return base_lr * batch_size / base_batch


def parameter_groups(model: nn.Module, weight_decay: float = WEIGHT_DECAY) -> list[dict[str, Any]]:
    """Two groups: conv/linear weights (``dim > 1``) with ``weight_decay``; BN parameters and biases with 0.

    Each group also lists its parameter names under ``"names"`` (ignored by the optimizer; for reports).
    """
    decay, no_decay, decay_names, no_decay_names = [], [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.dim() > 1:
            decay.append(p)
            decay_names.append(name)
        else:
            no_decay.append(p)
            no_decay_names.append(name)
    return [
        {"params": decay, "weight_decay": weight_decay, "names": decay_names},
        {"params": no_decay, "weight_decay": 0.0, "names": no_decay_names},
    ]


def build_optimizer(model: nn.Module, lr: float, *, momentum: float = MOMENTUM,
                    weight_decay: float = WEIGHT_DECAY, nesterov: bool = False) -> torch.optim.SGD:
    """SGD with the recipe's parameter groups (see :func:`parameter_groups`)."""
    groups = parameter_groups(model, weight_decay)
    for g in groups:
        g.pop("names")
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


class LinearDecay:
    """``LambdaLR`` factor: linear warm-up over ``warmup_steps``, then ``1 - step / total_steps`` (0 at
    and after ``total_steps``). A class (not a closure) so the scheduler's state dict records it."""

    def __init__(self, total_steps: int, warmup_steps: int = 0) -> None:
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        decay = max(0.0, 1.0 - step / self.total_steps) if self.total_steps > 0 else 0.0
        if self.warmup_steps > 0 and step < self.warmup_steps:
            return decay * (step + 1) / self.warmup_steps
        return decay


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int,
                    warmup_steps: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-iteration linear decay to 0 at ``total_steps`` (step the scheduler after every optimizer step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LinearDecay(total_steps, warmup_steps))


def build_loss(label_smoothing: float = LABEL_SMOOTHING) -> nn.CrossEntropyLoss:
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)


def _bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor], *,
                   forward: Callable[[nn.Module, torch.Tensor], Any] | None = None,
                   all_reduce_mean: Callable[[torch.Tensor], torch.Tensor] | None = None) -> int:
    """Re-estimate every BatchNorm's running mean/var as the cumulative average over ``batches``.

    Running statistics are reset, ``momentum`` is set to ``None`` (PyTorch's cumulative moving average,
    i.e. the official momentum ``1/iter``) for the pass and restored afterwards; the weights do not change.
    ``all_reduce_mean`` (distributed runs) averages the statistics over ranks at the end. Returns the
    number of batches seen.
    """
    bns = _bn_layers(model)
    if not bns:
        return 0
    saved = [(m.momentum, m.training) for m in bns]
    was_training = model.training
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    n = 0
    try:
        for x in batches:
            if forward is None:
                model(x)
            else:
                forward(model, x)
            n += 1
    finally:
        for m, (momentum, training) in zip(bns, saved, strict=True):
            m.momentum = momentum
            m.train(training)
        model.train(was_training)
    if all_reduce_mean is not None:
        for m in bns:
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.copy_(all_reduce_mean(m.running_mean))
            m.running_var.copy_(all_reduce_mean(m.running_var))
    return n
