"""Training, evaluation and prediction with the official ShuffleNet recipe (V1 paper Sec. 4).

    from shufflenet.train import TrainConfig, train
    result = train(TrainConfig(model="shufflenet_v2_x0_5", dataset="fashion-mnist", epochs=30))

One process, or many under torchrun (DDP); resumable exactly; see :mod:`shufflenet.train.engine`.
"""

from shufflenet.train.checkpoint import load_checkpoint, save_checkpoint
from shufflenet.train.config import EvalConfig, PredictConfig, TrainConfig, load_config_file, resolve_config
from shufflenet.train.data import DataBundle, Preprocess, build_data
from shufflenet.train.engine import ModelEMA, TrainingDiverged, TrainingInterrupted, TrainResult, train
from shufflenet.train.evaluate import EvalReport, EvalResult, evaluate, load_model_for_inference, run_eval
from shufflenet.train.predict import FilePrediction, Predictions, PredictResult, predict
from shufflenet.train.recipe import (
    build_loss,
    build_optimizer,
    build_scheduler,
    parameter_groups,
    recalibrate_bn,
    scaled_lr,
)
from shufflenet.train.rundir import DiskFullError, OutputWriteError, RunDirectoryError, RunInUseError

__all__ = [
    "DataBundle", "DiskFullError", "EvalConfig", "EvalReport", "EvalResult", "FilePrediction", "ModelEMA",
    "OutputWriteError", "PredictConfig", "PredictResult", "Predictions", "Preprocess", "RunDirectoryError",
    "RunInUseError", "TrainConfig", "TrainResult", "TrainingDiverged", "TrainingInterrupted", "build_data",
    "build_loss", "build_optimizer", "build_scheduler", "evaluate", "load_checkpoint", "load_config_file",
    "load_model_for_inference", "parameter_groups", "predict", "recalibrate_bn", "resolve_config",
    "run_eval", "save_checkpoint", "scaled_lr", "train",
]
