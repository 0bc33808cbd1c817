"""The classifier interface every network of this package follows (timm's contract).

``forward(x) == forward_head(forward_features(x))``; ``reset_classifier(n)`` swaps the last layer.
A subclass sets ``self.fc`` (its classifier), ``self.num_features``, ``self.in_chans``,
``self.min_input_size`` and implements ``forward_features``.
"""

from __future__ import annotations

import torch
from torch import nn

from shufflenet.models.layers import check_input


class Classifier(nn.Module):
    """Base of every network of this package: global average pool, dropout, linear."""

    fc: nn.Linear
    num_features: int
    in_chans: int
    min_input_size: int
    drop_rate: float

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool (any input size), dropout, classifier. ``pre_logits`` stops before the FC."""
        x = x.mean((2, 3))
        if self.drop_rate > 0.0:
            x = nn.functional.dropout(x, self.drop_rate, self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_chans, self.min_input_size, type(self).__name__)
        return self.forward_head(self.forward_features(x))

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` outputs."""
        bias = self.fc.bias is not None
        self.fc = nn.Linear(self.num_features, num_classes, bias=bias).to(self.fc.weight.device)
        nn.init.normal_(self.fc.weight, 0, 0.01)
        if bias:
            nn.init.zeros_(self.fc.bias)


def init_official(model: nn.Module) -> None:
    """The official ShuffleNet initialisation (megvii-model/ShuffleNet-Series ``_initialize_weights``).

    Convs N(0, std=1/fan_in_per_group) — the first conv N(0, 0.01) —, BN weight 1 and bias 1e-4, linear N(0, 0.01).
    """
    first_conv = True
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            # The official code passes 1/fan_in as the *standard deviation* (not its square root).
            std = 0.01 if first_conv else 1.0 / m.weight.shape[1]
            first_conv = False
            nn.init.normal_(m.weight, 0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.constant_(m.bias, 1e-4)
            nn.init.zeros_(m.running_mean)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def init_kaiming(model: nn.Module, fc_std: float | None = 0.01, zero_fc_bias: bool = True) -> None:
    """He et al. (2015) initialisation, as torchvision's MobileNets, TF-slim's NASNet and the CIFAR ResNets
    use it: Kaiming-normal fan-out convs with zero bias, BN weight 1 and bias 0; linear layers N(0, ``fc_std``)
    (PyTorch's default when ``None``) with a zero bias when ``zero_fc_bias``."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if fc_std is not None:
                nn.init.normal_(m.weight, 0, fc_std)
            if zero_fc_bias and m.bias is not None:
                nn.init.zeros_(m.bias)
