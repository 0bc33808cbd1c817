"""Networks: ShuffleNet V2 (and its variants), ShuffleNet V1, MobileNet V1, and the paper's other comparison
networks (Table 8: Xception, DenseNet, IGCV3-D, CondenseNet, NASNet-A; the CIFAR ResNets of the
FLOPs-vs-speed suite); the registry; weight loading.

Importing this package registers every model. Nothing here imports from cost/, measure/ or later layers.
"""

from shufflenet.models import (  # noqa: F401  (registration)
    cifar_resnet,
    condensenet,
    densenet,
    igcv3,
    mobilenet_v1,
    nasnet,
    shufflenet_v1,
    shufflenet_v2,
    xception,
)
from shufflenet.models._registry import PaperRef, create_model, get_entry, list_models, register_model
from shufflenet.models.weights import load_weights

__all__ = ["PaperRef", "create_model", "get_entry", "list_models", "load_weights", "register_model"]
