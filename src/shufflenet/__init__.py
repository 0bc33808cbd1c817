"""shufflenet: ShuffleNet V2/V1 exact to the papers, and the paper's method — FLOPs *and* memory access
cost (MAC), measured speed, the G1-G4 guideline experiments and model audits — for any PyTorch model."""

from shufflenet.cost import CostReport, count_cost
from shufflenet.measure import Measurement, ProfileReport, measure, profile
from shufflenet.models import create_model, list_models, load_weights
from shufflenet.render import render, write_result

__version__ = "0.1.0"
__all__ = [
    "CostReport",
    "Measurement",
    "ProfileReport",
    "__version__",
    "count_cost",
    "create_model",
    "list_models",
    "load_weights",
    "measure",
    "profile",
    "render",
    "write_result",
]
