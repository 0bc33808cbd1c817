"""Networks: ShuffleNet V2 (and its variants), ShuffleNet V1, MobileNet V1; the registry; weight loading.

Importing this package registers every model. Nothing here imports from cost/, measure/ or later layers.
"""

from shufflenet.models import cifar_resnet, condensenet, mobilenet_v1, nasnet, shufflenet_v1, shufflenet_v2  # noqa: F401  (registration)
from shufflenet.models._registry import PaperRef, create_model, get_entry, list_models, register_model
from shufflenet.models.weights import load_weights

__all__ = ["PaperRef", "create_model", "get_entry", "list_models", "load_weights", "register_model"]
