"""Synthetic sequence tasks with an adjustable dependency lag, plus a small text corpus.

Every task returns a :class:`Task`: a batch of inputs ``x`` (T, B, I), targets ``y`` in the
layout :func:`core.bptt` expects, the loss to use and the *baseline loss*, the loss of the
best predictor that ignores the inputs (it may know the time step). A model has learned
something only once its loss falls well below that baseline.

``"adding"``  the adding problem (Hochreiter & Schmidhuber 1997; Martens & Sutskever 2011).
``"copy"``    the copy / memory task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016).
``"sine"``    next-step prediction of a noisy periodic sum of sines with period ``lag``.
``"chars"``   next-character prediction on ``core/data/corpus.txt``: public-domain passages
              (Dickens, *A Tale of Two Cities*; Shakespeare, Sonnets 18 and 116; Lincoln, the
              Gettysburg Address; Austen, *Pride and Prejudice*; the Declaration of
              Independence), lower-cased.

Batches are deterministic in ``seed``; :meth:`Task.sample` draws a fresh batch with the same
settings (a training loop calls it once per step).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from .checks import check_int, is_int

TASKS = ("adding", "copy", "sine", "chars")
_CORPUS = "corpus.txt"


@dataclass(frozen=True, eq=False)
class Task:
    """One batch of a task. T = ``seq_len`` steps, B = ``batch_size``.

    Attributes
    ----------
    name : one of :data:`TASKS`.
    x : (T, B, input_size) float inputs.
    y : targets: (B, output_size) float for ``loss_on="last"`` MSE, (T, B, output_size) float
        for ``loss_on="all"`` MSE, (T, B) int class ids for cross entropy.
    loss : ``"mse"`` or ``"cross_entropy"``; loss_on : ``"all"`` or ``"last"`` (as in
        :func:`core.bptt`).
    input_size, output_size, seq_len, batch_size : sizes.
    lag : the dependency lag in steps (None for ``"chars"``, where it does not apply).
    baseline_loss : expected loss of the best input-ignoring predictor.
    description : one human sentence about the task and its baseline.
    vocab : for ``"chars"`` the characters of the class ids (``vocab[i]`` is class i); for
        ``"copy"`` the token names; None otherwise.
    options : task-specific settings (``num_symbols``, ``alphabet``, ``noise``, ``dtype``).
    seed : the seed this batch was drawn with (None if a Generator was passed).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    loss: str
    loss_on: str
    input_size: int
    output_size: int
    seq_len: int
    batch_size: int
    lag: int | None
    baseline_loss: float
    description: str
    vocab: tuple | None = None
    options: dict = field(default_factory=dict)
    seed: object = None

    def sample(self, seed) -> Task:
        """A fresh batch with the same name, sizes, lag and options, drawn with ``seed``.

        Parameters
        ----------
        seed : int >= 0, a tuple of such ints, or a ``np.random.Generator`` (advanced in place).
        """
        return make_task(self.name, self.seq_len, self.batch_size, self.lag, seed, **self.options)


# ----------------------------------------------------------------------------- seeds
def _rng(seed):
    """A Generator from an int >= 0, a tuple of ints >= 0, or a Generator (returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    parts = seed if isinstance(seed, (tuple, list)) else (seed,)
    for s in parts:
        if not is_int(s) or s < 0:
            raise ValueError(f"seed must be an integer >= 0, a tuple of them or a numpy Generator, got {seed!r}")
    return np.random.default_rng([int(s) for s in parts])


def load_corpus() -> str:
    """The shipped corpus (``core/data/corpus.txt``), lower-cased."""
    return resources.files(__package__).joinpath("data", _CORPUS).read_text(encoding="utf-8").lower()


# ----------------------------------------------------------------------------- tasks
def _adding(T, B, lag, rng, dtype):
    """Adding problem batch: x (T, B, 2) [value, marker], y (B, 1) sum of the marked values."""
    lag = T if lag is None else lag
    check_int("lag", lag, 2)
    if lag > T:
        raise ValueError(f"lag must be <= seq_len for task 'adding', got lag={lag}, seq_len={T}")
    start, half = T - lag, lag // 2
    values = rng.uniform(0.0, 1.0, size=(T, B))
    first = start + rng.integers(0, half, size=B)  # in the first half of the last `lag` steps
    second = start + half + rng.integers(0, lag - half, size=B)  # in the second half
    cols = np.arange(B)
    markers = np.zeros((T, B))
    markers[first, cols] = 1.0
    markers[second, cols] = 1.0
    x = np.stack([values, markers], axis=2).astype(dtype)
    y = (x[first, cols, 0] + x[second, cols, 0])[:, None]  # (B, 1)
    desc = (f"Adding problem: two values marked among the last {lag} steps (one in each half); "
            f"output their sum at the last step. Baseline (always predict 1): var = 1/6.")
    return dict(x=x, y=y, loss="mse", loss_on="last", input_size=2, output_size=1, lag=lag,
                baseline_loss=1.0 / 6.0, description=desc)


def _copy(T, B, lag, rng, dtype, num_symbols=None, alphabet=8):
    """Copy task batch: x (T, B, alphabet + 2) one-hot tokens, y (T, B) class ids."""
    check_int("alphabet", alphabet, 1)
    K = num_symbols
    if K is None:
        K = min(5, (T - 1) // 2) if lag is None else min(5, lag - 1, T - lag)
        if K < 1:
            raise ValueError(f"seq_len={T} and lag={lag} leave no room for the copy task: "
                             f"need 1 <= num_symbols < lag <= seq_len - num_symbols")
    check_int("num_symbols", K, 1)
    lag = T - K if lag is None else lag
    check_int("lag", lag, 1)
    if lag < K + 1:
        raise ValueError(f"lag must be > num_symbols for task 'copy' (the delimiter comes between), "
                         f"got lag={lag}, num_symbols={K}")
    if lag + K > T:
        raise ValueError(f"seq_len must be >= lag + num_symbols for task 'copy', got seq_len={T}, "
                         f"lag={lag}, num_symbols={K}")
    blank, delim = 0, alphabet + 1
    start = T - K - lag
    symbols = rng.integers(1, alphabet + 1, size=(K, B))  # (K, B) in 1..alphabet
    tokens = np.full((T, B), blank)
    tokens[start : start + K] = symbols
    tokens[T - K - 1] = delim
    y = np.full((T, B), blank, dtype=np.int64)
    y[T - K :] = symbols
    x = np.eye(alphabet + 2, dtype=dtype)[tokens]  # (T, B, alphabet + 2)
    vocab = ("blank", *tuple(f"s{i}" for i in range(1, alphabet + 1)), "delimiter")
    desc = (f"Copy task: remember {K} symbols (of {alphabet}), wait {lag - K} steps, see the delimiter, "
            f"then recall them in order ({lag} steps after they were shown). Baseline "
            f"(blank, then uniform guesses): {K} ln {alphabet} / {T}.")
    return dict(x=x, y=y, loss="cross_entropy", loss_on="all", input_size=alphabet + 2,
                output_size=alphabet + 1, lag=lag, baseline_loss=K * np.log(alphabet) / T,
                description=desc, vocab=vocab, options={"num_symbols": K, "alphabet": alphabet})


def _sine(T, B, lag, rng, dtype, noise=0.1, harmonics=3):
    """Sine batch: x (T, B, 1) noisy signal, y (T, B, 1) the clean signal one step ahead."""
    lag = max(2, T // 4) if lag is None else lag
    check_int("lag", lag, 2)
    check_int("harmonics", harmonics, 1)
    if lag >= T:
        raise ValueError(f"lag must be < seq_len for task 'sine', got lag={lag}, seq_len={T}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    k = np.arange(1, harmonics + 1)[:, None]  # (K, 1)
    amp = rng.uniform(0.0, 1.0, size=(harmonics, B))
    phase = rng.uniform(0.0, 2 * np.pi, size=(harmonics, B))
    t = np.arange(T + 1)[:, None, None]  # (T+1, 1, 1)
    s = np.sum(amp * np.sin(2 * np.pi * k * t / lag + phase), axis=1)  # (T+1, B), period lag
    x = (s[:-1] + noise * rng.standard_normal((T, B)))[:, :, None].astype(dtype)
    y = s[1:, :, None].astype(dtype)
    desc = (f"Sine: predict the next clean value of a noisy sum of {harmonics} harmonics with random "
            f"amplitudes and phases and period {lag} (the value {lag} steps back repeats). "
            f"Baseline (predict 0): E[s^2] = {harmonics}/6.")
    return dict(x=x, y=y, loss="mse", loss_on="all", input_size=1, output_size=1, lag=lag,
                baseline_loss=harmonics / 6.0, description=desc,
                options={"noise": float(noise), "harmonics": harmonics})


def _chars(T, B, lag, rng, dtype):
    """Character batch: x (T, B, V) one-hot characters, y (T, B) the next character ids."""
    text = load_corpus()
    vocab = tuple(sorted(set(text)))
    ids = np.searchsorted(np.array(vocab), np.array(list(text)))  # (N,)
    N, V = ids.size, len(vocab)
    if T > N - 1:
        raise ValueError(f"seq_len must be <= {N - 1} (corpus length - 1) for task 'chars', got {T}")
    starts = rng.integers(0, N - T, size=B)  # windows of T + 1 characters
    window = ids[starts[None, :] + np.arange(T + 1)[:, None]]  # (T+1, B)
    x = np.eye(V, dtype=dtype)[window[:-1]]
    y = window[1:].astype(np.int64)
    freq = np.bincount(ids, minlength=V) / N
    entropy = float(-np.sum(freq[freq > 0] * np.log(freq[freq > 0])))
    desc = (f"Chars: predict the next character of a {N}-character public-domain corpus ({V} symbols). "
            f"Baseline (character frequencies): entropy {entropy:.3f} nats.")
    return dict(x=x, y=y, loss="cross_entropy", loss_on="all", input_size=V, output_size=V,
                lag=None, baseline_loss=entropy, description=desc, vocab=vocab)


_MAKERS = {"adding": _adding, "copy": _copy, "sine": _sine, "chars": _chars}


def make_task(name: str, seq_len: int, batch_size: int, lag: int | None = None, seed=0,
              dtype=np.float64, **options) -> Task:
    """Draw a batch of a synthetic task.

    Parameters
    ----------
    name : ``"adding"``, ``"copy"``, ``"sine"`` or ``"chars"``.
    seq_len : T, steps per sequence.  batch_size : B.
    lag : dependency length in steps; None picks a default.
        adding: the marked values lie in the last ``lag`` steps, the first in its first half,
        so it must be held ``lag/2 .. lag-1`` steps (2 <= lag <= T; default T).
        copy: steps between a symbol and its recall (num_symbols < lag <= T - num_symbols;
        default T - num_symbols).  sine: period of the signal, the value ``lag`` steps back
        repeats (2 <= lag < T; default max(2, T // 4)).  chars: ignored (Task.lag is None).
    seed : int >= 0, tuple of ints >= 0, or ``np.random.Generator``.
    dtype : float dtype of ``x`` (and of ``y`` for MSE tasks).
    **options : copy: ``num_symbols`` (default min(5, ...) to fit), ``alphabet`` (8);
        sine: ``noise`` (std of the input noise, 0.1), ``harmonics`` (3).

    Returns
    -------
    Task with ``x`` (T, B, I) and ``y`` as described in :class:`Task`.

    .. math:: \\text{adding: } y = x_{t_1} + x_{t_2}, \\qquad
              \\text{sine: } s_t = \\sum_{k} a_k \\sin(2\\pi k t / \\text{lag} + \\varphi_k)
    """
    if name not in TASKS:
        raise ValueError(f"name must be one of {TASKS}, got {name!r}")
    check_int("seq_len", seq_len, 1)
    check_int("batch_size", batch_size, 1)
    if lag is not None:
        check_int("lag", lag, 1)
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    allowed = {"copy": {"num_symbols", "alphabet"}, "sine": {"noise", "harmonics"}}.get(name, set())
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"option {unknown[0]!r} does not apply to task {name!r} (allowed: {sorted(allowed)})")
    rng = _rng(seed)
    fields = _MAKERS[name](int(seq_len), int(batch_size), None if lag is None else int(lag), rng,
                           np.dtype(dtype), **options)
    opts = {**fields.pop("options", {}), "dtype": np.dtype(dtype).type}
    if fields["loss"] == "mse":
        fields["y"] = fields["y"].astype(dtype)
    return Task(name=name, seq_len=int(seq_len), batch_size=int(batch_size), options=opts,
                seed=None if isinstance(seed, np.random.Generator) else seed, **fields)
