"""bpttlab core: a pure NumPy engine for backpropagation through time in RNN, LSTM and GRU."""
from .bptt import BPTTResult, bptt, layer_backward, layer_forward, loss_forward_backward
from .models import ARCHS, INITS, GRU, LSTM, RNN, Model, ModelConfig, build, param_shapes

__version__ = "0.1.0"

__all__ = [
    "ARCHS", "INITS", "GRU", "LSTM", "RNN", "BPTTResult", "Model", "ModelConfig",
    "bptt", "build", "layer_backward", "layer_forward", "loss_forward_backward", "param_shapes",
    "__version__",
]
