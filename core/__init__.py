"""bpttlab core: a pure NumPy engine for backpropagation through time in RNN, LSTM and GRU."""
from .analysis import (
    GateStats,
    activation_derivative_mean,
    gate_saturation,
    geometric_fit,
    lyapunov_exponent,
    rate_per_step,
    spectral_radius,
    top_singular_value,
)
from .bptt import BPTTResult, bptt, loss_forward_backward
from .layers import layer_backward, layer_forward
from .contributions import ContributionMap, StepContributions, step_contributions, step_losses, whh_contribution_map
from .connectivity import connectivity
from .jacobians import (
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

from .walkthrough import Walkthrough, walkthrough

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
    "GateStats",
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
    "activation_derivative_mean",
    "adam_step",
    "bptt",
    "build",
    "build_model",
    "checkpointed_bptt",
    "clip_grad_norm",
    "connectivity",
    "gamma_bound",
    "gate_products",
    "gate_saturation",
    "geometric_fit",
    "global_norm",
    "hidden_size_for_params",
    "jacobian_norms",
    "layer_backward",
    "layer_forward",
    "load_corpus",
    "loss_forward_backward",
    "lyapunov_exponent",
    "make_task",
    "param_shapes",
    "rate_per_step",
    "rtrl",
    "sgd_step",
    "spectral_radius",
    "step_jacobian_singular_values",
    "top_singular_value",
    "train",
    "train_iter",
    "train_step",
    "weight_singular_values",
    "windowed_bptt",
]
__all__ += ["ContributionMap", "StepContributions", "Walkthrough", "step_contributions", "step_losses", "walkthrough",
            "whh_contribution_map"]
