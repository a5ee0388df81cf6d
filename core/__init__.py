"""bpttlab core: a pure NumPy engine for backpropagation through time in RNN, LSTM and GRU."""
from .bptt import BPTTResult, bptt, layer_backward, layer_forward, loss_forward_backward
from .jacobians import (
    connectivity,
    gamma_bound,
    gate_products,
    jacobian_norms,
    step_jacobian_singular_values,
    weight_singular_values,
)
from .checkpointing import CheckpointResult, WindowResult, checkpointed_bptt, windowed_bptt
from .rtrl import RTRLResult, rtrl
from .models import ARCHS, INITS, GRU, LSTM, RNN, Model, ModelConfig, build, param_shapes
from .tasks import TASKS, Task, load_corpus, make_task
from .optim import OPTIMIZERS, OptimizerState, adam_step, clip_grad_norm, global_norm, sgd_step
from .train import (
    Snapshot,
    StepResult,
    TrainConfig,
    TrainResult,
    build_model,
    hidden_size_for_params,
    train,
    train_iter,
    train_step,
)

__version__ = "0.1.0"

__all__ = [
    "ARCHS",
    "GRU",
    "INITS",
    "LSTM",
    "OPTIMIZERS",
    "RNN",
    "TASKS",
    "BPTTResult",
    "CheckpointResult",
    "Model",
    "ModelConfig",
    "OptimizerState",
    "RTRLResult",
    "Snapshot",
    "StepResult",
    "Task",
    "TrainConfig",
    "TrainResult",
    "WindowResult",
    "__version__",
    "adam_step",
    "bptt",
    "build",
    "build_model",
    "checkpointed_bptt",
    "clip_grad_norm",
    "connectivity",
    "gamma_bound",
    "gate_products",
    "global_norm",
    "hidden_size_for_params",
    "jacobian_norms",
    "layer_backward",
    "layer_forward",
    "load_corpus",
    "loss_forward_backward",
    "make_task",
    "param_shapes",
    "rtrl",
    "sgd_step",
    "step_jacobian_singular_values",
    "train",
    "train_iter",
    "train_step",
    "weight_singular_values",
    "windowed_bptt",
]
