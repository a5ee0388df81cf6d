"""One home per view: a frozen :class:`View` record for each plot of the app, view 1 included.

A record holds everything about a view: its key (in the URL and in exports), tab label, title,
caption, maths panel (Markdown + TeX), the function that computes its payload from the core (via
:mod:`visualizer.compute`, memoized), its pure figure builder and its export series. The URL state,
the layout, the callbacks, the exports and the maths panels all read :data:`VIEWS`; adding a view is
one record here plus its figure builder.

Nothing here imports dash; the figures are the plain dicts plotly.js takes.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import compute, cost, cost_figures, figures, heatmaps, narrative, payloads, series, stepview, unrolled


def _no_note(keys) -> None:
    """No sentence: the view always shows everything."""
    return None


@dataclass(frozen=True)
class View:
    """One view. ``payload(keys)`` computes its data for a list of :class:`visualizer.compute.RunKey`
    (one per architecture; raises ValueError for impossible settings), ``figure(payload)`` draws it,
    ``series(payload, keys)`` flattens it for export and ``note(keys)`` adds a sentence to the caption
    when the view shows a reduced version of the data (or returns None). ``tab`` is False for view 1,
    which sits above the tabs. ``uses`` names the settings beyond the run keys that the payload takes as
    keyword arguments (a change of one redraws the view); ``one_arch``: the view studies only the first
    ticked architecture."""

    key: str
    label: str
    title: str
    caption: str
    maths: str
    payload: Callable
    figure: Callable
    series: Callable
    note: Callable = _no_note
    tab: bool = True
    uses: tuple = ()
    one_arch: bool = False
    present_scale: float | None = None  # presentation mode's scale of the figure (None: the app's)


VIEWS = {v.key: v for v in (
    View(
        key="grad_norm",
        label="Gradient per step",
        title="‖∂L/∂hₜ‖ at every step",
        caption=("Each line is one architecture (lower layers dotted). A line falling to the left means the loss "
                 "barely reaches early steps (vanishing); a line rising to the left means it blows up (exploding). "
                 "All lines share one absolute log axis, so heights compare directly. A log axis has no 0 and no ∞: "
                 "exact zeros are marked in a strip under the plot, inf/NaN in a strip above it."),
        maths=r"""
Steps run $t = 0, \dots, T-1$ and gradients are row vectors. The loss reaches the state $h_t$ directly
(if step $t$ is scored) and through every later state:

$$\frac{\partial L}{\partial h_t} \;=\; \underbrace{\frac{\partial L_t}{\partial h_t}}_{\text{local}}
\;+\; \underbrace{\frac{\partial L}{\partial h_{t+1}}\,J_{t+1}}_{\text{carried back}},
\qquad J_k = \frac{\partial h_k}{\partial h_{k-1}},
\qquad\text{so}\qquad
\frac{\partial L_{T-1}}{\partial h_t} \;=\; \frac{\partial L_{T-1}}{\partial h_{T-1}}\,
J_{T-1} J_{T-2} \cdots J_{t+1}.$$

For the plain RNN $h_k = \phi(W_{ih}x_k + W_{hh}h_{k-1} + b)$, $J_k = \operatorname{diag}(\phi'(a_k))\,W_{hh}$ and

$$\big\lVert J_{T-1} \cdots J_{t+1} \big\rVert \;\le\; \big(\gamma\,\sigma_1(W_{hh})\big)^{T-1-t},
\qquad \gamma = \sup|\phi'| \;(=1 \text{ for tanh and ReLU}).$$

This is a bound (Pascanu et al. 2013): $\sigma_1(W_{hh}) < 1/\gamma$ is *sufficient* for vanishing;
$\sigma_1(W_{hh}) > 1/\gamma$ is *necessary*, not sufficient, for exploding — then the bound grows and
says nothing, and a tanh RNN with $\sigma_1 > 1$ can still vanish. The rate actually seen is set by
the top Lyapunov exponent $\lambda = \lim_k \tfrac1k \ln\lVert J_{T-1}\cdots J_{T-k}\rVert$, which the
Jacobians tab estimates. Truncated BPTT with window $k$ keeps only the factors inside the current
window: beyond it, the carried gradient is exactly zero.
""",
        payload=payloads.overview,
        figure=lambda overview: figures.grad_norm_figure(overview.flows, truncate=overview.truncate),
        series=series.grad_norm_series,
        tab=False,
    ),
    View(
        key="heatmap",
        label="Heatmaps",
        title="|∂L/∂hₜ| per hidden unit (top layer)",
        caption=("|∂L/∂hₜ| of every hidden unit (rows) at every step (columns), top layer, combined over the "
                 "batch. One colour scale for all architectures: dark means the gradient has vanished."),
        maths=r"""
Each cell is $\big|\partial L/\partial h_{t,j}\big| = \sqrt{\sum_b (\partial L/\partial h_{t,j}^{(b)})^2}$ for
unit $j$ at step $t$ over the batch $b$; summing its squares over $j$ gives the line of the top plot,
$\lVert \partial L/\partial h_t \rVert$.
""",
        payload=lambda keys: payloads.heatmap_items([compute.grad_flow(k) for k in keys]),
        figure=heatmaps.heatmap_figure,
        series=series.heatmap_series,
    ),
    View(
        key="jacobian",
        label="Jacobians",
        title="Jacobian norms ‖∂s₍T−1₎/∂sₜ‖ against the lag",
        caption=("‖∂s₍T−1₎/∂sₜ‖ = ‖J₍T−1₎⋯J₍t+1₎‖: how much of a change in the state at step t still reaches "
                 "the last state, against the lag k = T−1−t (the band spans the batch, the line is its median). "
                 "Dotted, same colour: a straight line fitted over the lags; its rate per step is in the legend. "
                 "For plain RNNs, dashed: the bound (γσ₁(W_hh))ᵏ; dash-dot: ρ(W_hh)ᵏ, from the spectral radius. "
                 "The grey dotted line is a norm of 1 (no change)."),
        maths=r"""
With the state $s_t$ ($h_t$, or $[h_t; c_t]$ for the LSTM), the plot shows
$\lVert \partial s_{T-1}/\partial s_t \rVert = \lVert J_{T-1} J_{T-2}\cdots J_{t+1}\rVert$ against the lag
$k = T-1-t$. On a log axis a product of $k$ factors of size about $r$ is a straight line of slope
$\log_{10} r$. The fitted rate estimates $e^{\lambda}$, where $\lambda$ is the top Lyapunov exponent,
$\hat\lambda_k = \tfrac1k \ln \lVert J_{T-1}\cdots J_{T-k}\rVert$.

For a plain RNN the dashed line is the bound $(\gamma\,\sigma_1(W_{hh}))^k$: below $1/\gamma$ it guarantees
vanishing; above, it only allows exploding. The dash-dot line $\rho(W_{hh})^k$ uses the spectral radius
$\rho \le \sigma_1$; for a tanh RNN, $\rho(W_{hh})$ times the mean $\tanh'$ is a heuristic (not a bound)
that is often close to the measured rate. Gated cells add paths around $W_{hh}$, so no $\sigma_1$ bound
applies to them.
""",
        payload=payloads.jacobian_items,
        figure=figures.jacobian_figure,
        series=series.jacobian_series,
        note=narrative.jacobian_note,
    ),
    View(
        key="spectra",
        label="Spectra",
        title="Singular values of W_hh and of the one-step Jacobians",
        caption=("Left: singular values of the recurrent weights W_hh (the whole stacked matrix for LSTM and GRU); "
                 "for plain RNNs the dotted line is 1/γ, and σ₁ below it is sufficient for vanishing. Right: the "
                 "largest (solid) and smallest (dotted) singular value of each one-step Jacobian ∂sₜ/∂sₜ₋₁ of the "
                 "first sequence; their product over the steps bounds the product of Jacobians, often loosely. Steps "
                 "where one is inf/NaN are marked in a strip above the right panel, exact zeros (a singular "
                 "Jacobian, or underflow) in a strip under it."),
        maths=r"""
For a plain RNN the singular values $\sigma_1 \ge \sigma_2 \ge \dots$ of $W_{hh}$ bound every step:
$\lVert J_k v\rVert \le \gamma\,\sigma_1(W_{hh})\,\lVert v\rVert$. The right panel shows the largest and
smallest singular value of each actual step Jacobian $J_t$. Since norms are submultiplicative,
$\lVert J_{T-1}\cdots J_{t+1}\rVert \le \prod_k \sigma_{\max}(J_k)$: a bound, which can stay near 1 (or grow)
while the product itself vanishes, because the top singular directions of consecutive steps need not line up.
""",
        payload=payloads.spectra_items,
        figure=figures.spectra_figure,
        series=series.spectra_series,
        note=payloads.spectra_note,
    ),
    View(
        key="gates",
        label="Gating",
        title="Gated paths against the whole Jacobian",
        caption=("Like with like, from step t to the last step: the plain RNN's exact ‖J₍T−1₎⋯J₍t+1₎‖, the LSTM's "
                 "cell path ∏ f and the GRU's carry path ∏ z (mean over units), and dashed, the gated networks' "
                 "whole ‖∂s₍T−1₎/∂sₜ‖. Where the dashed line lies above the gated path, the rest of the Jacobian "
                 "carries gradient too."),
        maths=r"""
**LSTM** (gates $i, f, g, o$):
$$i_t = \sigma(\cdot),\; f_t = \sigma(W_{if}x_t + W_{hf}h_{t-1} + b_f),\; g_t = \tanh(\cdot),\; o_t = \sigma(\cdot),$$
$$c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t).$$
The $c \to c$ block of $\partial s_t/\partial s_{t-1}$ equals $\operatorname{diag}(f_t)$ (with $h_{t-1}$ held fixed), so
along the cell path alone the gradient is multiplied by $f_{T-1} \odot \cdots \odot f_{t+1}$, not by a product of
weight matrices. The whole Jacobian also has paths through $h$ and the gates, so its norm can lie above or
below that product. A forget bias $b_f$ makes $f \approx \sigma(b_f)$ while the gate's other inputs are small.

**GRU** (gates $r, z, n$):
$$n_t = \tanh\!\big(W_{in}x_t + b_{in} + r_t \odot (W_{hn}h_{t-1} + b_{hn})\big), \qquad
h_t = (1 - z_t)\odot n_t + z_t \odot h_{t-1},$$
so $\partial h_t/\partial h_{t-1} = \operatorname{diag}(z_t) + (\text{terms through } r_t, z_t, n_t)$: along the carry
path the gradient is multiplied by $z_{T-1} \odot \cdots \odot z_{t+1}$.

**Plain RNN**: the exact $\lVert J_{T-1}\cdots J_{t+1}\rVert$, the same quantity as the gated networks' dashed
line (not the bound $\prod_k \lVert J_k\rVert$).
""",
        payload=payloads.gate_items,
        figure=figures.gates_figure,
        series=series.gates_series,
        note=narrative.gates_note,
    ),
    View(
        key="connectivity",
        label="Connectivity",
        title="Connectivity ‖∂yₜ/∂xₛ‖ (first sequence)",
        caption=("Distill-style connectivity: how strongly the output at step t (rows) depends on the input at "
                 "step s (columns), ‖∂yₜ/∂xₛ‖ for the first sequence. Causal, so only s ≤ t is coloured; a short "
                 "bright band along the diagonal means a short memory."),
        maths=r"""
Each cell is $\lVert \partial y_t / \partial x_s \rVert$ for output step $t$ and input step $s \le t$ (the network is
causal, so $s > t$ is empty). It equals
$\big\lVert W_{\text{out}}\,\tfrac{\partial h_t}{\partial h_s}\,\tfrac{\partial h_s}{\partial x_s}\big\rVert$: the same
product of Jacobians as in training, read as "how far back does the output still listen?".
""",
        payload=payloads.connectivity_items,
        figure=heatmaps.connectivity_figure,
        series=series.connectivity_series,
        note=payloads.connectivity_note,
    ),
    View(
        key="cost",
        label="Cost",
        title="The cost of BPTT: memory and time against T, and what truncation gives up",
        caption=("Top: memory held and time for one gradient against the sequence length T, for full BPTT, truncated "
                 "BPTT (run window by window), checkpointing (√T states, or a fixed budget of states, recomputing the "
                 "rest) and real-time recurrent learning (RTRL, memory independent of T). Solid: measured; dashed: "
                 "the method's cost model where measuring would take too long; dotted grey: growth laws. Bottom: how "
                 "far the truncated gradient is from the full one for windows k, per architecture, and the memory "
                 "each method holds against its gradient error: checkpointing and RTRL are exact (rounding level)."),
        maths=r"""
BPTT keeps every step's activations for the backward pass, so its memory grows as $O(T)$:
$$\frac{\partial L}{\partial \theta} = \sum_{t} \frac{\partial L}{\partial s_t}\,
\frac{\partial s_t}{\partial \theta}\Big|_{\text{step } t}, \qquad
\frac{\partial L}{\partial s_{t}} = \frac{\partial L_t}{\partial s_t} + \frac{\partial L}{\partial s_{t+1}}J_{t+1}.$$

**Truncation** with window $k$ drops $J_{t+1}$ at the window boundaries: memory $O(k)$, a biased gradient.

**Checkpointing** stores $c$ states and recomputes the rest. With a budget of $c$ states the binomial
schedule (Griewank's revolve; Gruslys et al. 2016) recomputes the fewest steps,
$F(T, c-1) = rT - \binom{c+r}{r-1}$, $r$ the least integer with $\binom{c+r}{r} \ge T$: memory $O(c)$,
exact gradients; $c = \lceil\sqrt{T}\,\rceil$ gives memory $O(\sqrt{T})$.

**RTRL** carries $S_t = \partial s_t/\partial\theta$ forward, $S_t = J_t S_{t-1} + \partial s_t/\partial\theta|_t$:
memory $O(nP)$ whatever $T$, but $O(n^2 P)$ work per step for state size $n$ and $P$ parameters. Exact.
""",
        payload=cost.payload,
        figure=cost_figures.cost_figure,
        series=series.cost_series,
        note=cost.note,
    ),
    View(
        key="steps",
        label="BPTT step by step",
        title="One iteration of BPTT, step by step (first ticked architecture)",
        caption=("The unrolled network: inputs x, hidden states h (the LSTM's cell c in its own lane), outputs y and "
                 "losses L along time. Step through it with ▶ / ◀, the arrow keys (shift: a whole phase) or the "
                 "slider: the forward pass fills the states, then every step's loss; the backward pass runs right "
                 "to left, each edge as wide and dark as the gradient it carries (one shade per decade): the local "
                 "part comes down from the loss, the carried part from step t+1. Each step adds its piece Cₛ to "
                 "∂L/∂W_hh (bars); then one optimiser step (clipping as a marked rescale) and the next forward pass. "
                 "The map at the bottom shows which loss reaches which step."),
        maths=r"""
Forward, for $t = 0, \dots, T-1$: $h_t = f(W_{ih}x_t + W_{hh}h_{t-1} + b)$ (gated for the LSTM and GRU),
$y_t = W_{out}h_t + b_{out}$ and the loss $L = \sum_t L_t$ (each $L_t$ its share of the mean).

Backward, for $t = T-1, \dots, 0$:
$$\frac{\partial L}{\partial h_t} = \underbrace{\frac{\partial L_t}{\partial h_t}}_{\text{local}}
+ \underbrace{\frac{\partial L}{\partial h_{t+1}}\frac{\partial h_{t+1}}{\partial h_t}}_{\text{carried}},
\qquad C_s = \frac{\partial L}{\partial a_s}\,h_{s-1}^\top,\qquad
\frac{\partial L}{\partial W_{hh}} = G = \sum_s C_s .$$
The bars are $\langle C_s, G\rangle / \lVert G\rVert$, which add up to $\lVert G\rVert$ exactly; the line is
$\lVert \sum_{s' \ge s} C_{s'}\rVert$, the total accumulated so far. Step 0 adds nothing: $h_{-1} = 0$.
Truncation with window $k$ sets the carried term to zero at $t = k-1, 2k-1, \dots$ (the cut edges).

Update: $g \leftarrow g \cdot \min(1, c / \lVert g\rVert)$ when clipping at $c$, then one SGD or Adam step.

The map: $G = \sum_t \sum_{s \le t} G_{t,s}$ where $G_{t,s}$ is the gradient of $L_t$ alone through the use of
$W_{hh}$ at step $s$; the cell $(t, s)$ is $\lVert G_{t,s}\rVert$, computed exactly with one backward pass per
loss step.
""",
        payload=stepview.view_payload,
        figure=unrolled.step_figure,
        series=stepview.series,
        note=stepview.note,
        uses=("optimizer", "lr", "clip"),
        one_arch=True,
        present_scale=1.2,  # fitted to the window in presentation mode (assets/stepview.js): room for the network
    ),
)}
GRAD_NORM = VIEWS["grad_norm"]  # view 1, above the tabs
TABS = tuple(v for v in VIEWS.values() if v.tab)  # the tabbed views, in tab order
TAB_KEYS = tuple(v.key for v in TABS)


def payload_of(view: View, keys, params):
    """``view``'s payload for the run keys and the app settings ``params`` (the fields in ``view.uses``)."""
    return view.payload(keys, **{name: getattr(params, name) for name in view.uses})


def get(key) -> View | None:
    """The view named ``key``, or None."""
    return VIEWS.get(key) if isinstance(key, str) else None
