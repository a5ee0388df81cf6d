"""The maths behind each view, rendered with MathJax (``dcc.Markdown(mathjax=True)``).

Dash ships MathJax inside ``dash-core-components`` and serves it from the app itself (with
``serve_locally=True``, the default), so the equations render with no internet connection.
The short plain-text captions ("how to read this") live with the views; this module adds,
under each view, a collapsed "The maths" panel with the equations the view illustrates.
Equations follow PyTorch's conventions (gate orders i, f, g, o and r, z, n).
"""
from __future__ import annotations

from dash import Input, Output, dcc, html, no_update

BPTT = r"""
The loss reaches the state $h_t$ directly (if step $t$ is scored) and through every later state:

$$\frac{\partial L}{\partial h_t} \;=\; \underbrace{\frac{\partial L_t}{\partial h_t}}_{\text{local}}
\;+\; \underbrace{\frac{\partial L}{\partial h_{t+1}}\,\frac{\partial h_{t+1}}{\partial h_t}}_{\text{carried back}}
\qquad\Longrightarrow\qquad
\frac{\partial L_T}{\partial h_t} \;=\; \frac{\partial L_T}{\partial h_T}\prod_{k=t+1}^{T} J_k ,
\quad J_k = \frac{\partial h_k}{\partial h_{k-1}} .$$

For the plain RNN $h_k = \phi(W_{ih}x_k + W_{hh}h_{k-1} + b)$, so $J_k = \operatorname{diag}(\phi'(a_k))\,W_{hh}$ and

$$\Big\lVert \prod_{k=t+1}^{T} J_k \Big\rVert \;\le\; \big(\gamma\,\sigma_1(W_{hh})\big)^{T-t},
\qquad \gamma = \sup|\phi'| \;(=1 \text{ for tanh and ReLU}).$$

If $\sigma_1(W_{hh}) < 1/\gamma$ the gradient vanishes geometrically (Pascanu et al. 2013); it can
only explode if $\sigma_1(W_{hh}) > 1/\gamma$. Truncated BPTT with window $k$ keeps only the terms of
the product inside the current window: beyond it, the carried gradient is exactly zero.
"""

JACOBIAN = r"""
With the state $s_t$ ($h_t$, or $[h_t; c_t]$ for the LSTM), the plot shows
$\lVert \partial s_{T-1}/\partial s_t \rVert = \lVert J_{T-1} J_{T-2}\cdots J_{t+1}\rVert$ against the lag
$k = T-1-t$. On a log axis a product of $k$ factors of size about $\sigma$ is a straight line of slope
$\log_{10}\sigma$; the dashed line is $\sigma_1(W_{hh})^k$, the fastest growth the weights allow.
"""

HEATMAP = r"""
Each cell is $\big|\partial L/\partial h_{t,j}\big| = \sqrt{\sum_b (\partial L/\partial h_{t,j}^{(b)})^2}$ for
unit $j$ at step $t$ over the batch $b$; summing its squares over $j$ gives the line of the top plot,
$\lVert \partial L/\partial h_t \rVert$.
"""

SPECTRA = r"""
The singular values $\sigma_1 \ge \sigma_2 \ge \dots$ of $W_{hh}$ bound every step:
$\lVert J_k v\rVert \le \gamma\,\sigma_1(W_{hh})\,\lVert v\rVert$. The right panel shows the largest and
smallest singular value of each actual step Jacobian $J_t$; the product of many $J_t$ is dominated by
how these compare with 1.
"""

GATES = r"""
**LSTM** (gates $i, f, g, o$):
$$i_t = \sigma(\cdot),\; f_t = \sigma(W_{if}x_t + W_{hf}h_{t-1} + b_f),\; g_t = \tanh(\cdot),\; o_t = \sigma(\cdot),$$
$$c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t).$$
The cell has an additive path: $\partial c_t/\partial c_{t-1} \supseteq \operatorname{diag}(f_t)$, so along it the
gradient is multiplied by $\prod_k f_k$, not by a product of weight matrices. A forget bias $b_f$ makes
$f \approx \sigma(b_f)$: 0.73 for $b_f = 1$, 0.993 for $b_f = 5$.

**GRU** (gates $r, z, n$):
$$n_t = \tanh\!\big(W_{in}x_t + b_{in} + r_t \odot (W_{hn}h_{t-1} + b_{hn})\big), \qquad
h_t = (1 - z_t)\odot n_t + z_t \odot h_{t-1},$$
so $h_{t-1}$ reaches $h_t$ directly through the carry gate $z_t$ and the gradient along that path is
multiplied by $\prod_k z_k$.
"""

CONNECTIVITY = r"""
Each cell is $\lVert \partial y_t / \partial x_s \rVert$ for output step $t$ and input step $s \le t$ (the network is
causal, so $s > t$ is empty). It equals
$\big\lVert W_{\text{out}}\,\tfrac{\partial h_t}{\partial h_s}\,\tfrac{\partial h_s}{\partial x_s}\big\rVert$: the same
product of Jacobians as in training, read as "how far back does the output still listen?".
"""

TRAINING = r"""
Each step draws a fresh batch, runs BPTT, and updates the weights (SGD with momentum, or Adam). With
clipping at $c$ the whole gradient is rescaled first (Pascanu et al. 2013):

$$g \;\leftarrow\; g \cdot \min\!\Big(1,\; \frac{c}{\lVert g \rVert}\Big), \qquad
\lVert g\rVert = \sqrt{\textstyle\sum_p \lVert g_p\rVert^2},$$

so the step keeps its direction but its length is at most $c$. The lower plot shows $\lVert g\rVert$
before clipping; ○ marks the steps where it exceeded $c$.
"""

MATHS = {"grad": BPTT, "jacobian": JACOBIAN, "heatmap": HEATMAP, "spectra": SPECTRA, "gates": GATES,
         "connectivity": CONNECTIVITY, "training": TRAINING}


GRAD_MATHS = "grad-maths"
VIEW_MATHS = "view-maths"


def _body_id(panel_id: str) -> str:
    return f"{panel_id}-body"


def _summary_id(panel_id: str) -> str:
    return f"{panel_id}-summary"


def maths(view: str, id_: str = GRAD_MATHS) -> html.Details:
    """A collapsed "The maths" panel for ``view`` (one of :data:`MATHS`). Its MathJax body is
    rendered when the panel is first opened (a click on its summary, see :func:`register`), so
    the page loads no MathJax until someone asks for the maths."""
    return html.Details([html.Summary("The maths", id=_summary_id(id_), n_clicks=0),
                         html.Div(id=_body_id(id_), className="math", **{"data-view": view})],
                        id=id_, className="explain")


def view_maths_panel() -> html.Details:
    """The maths panel of the tabbed view; its text follows the open tab (see :func:`register`)."""
    return maths("heatmap", VIEW_MATHS)


def maths_markdown(view: str) -> str:
    """The Markdown + TeX source of ``view``'s maths."""
    return MATHS.get(view, "")


def body(opened, view):
    """Callback: the panel's MathJax body for ``view`` once the panel was opened (nothing before)."""
    if not opened or view not in MATHS:
        return no_update
    return dcc.Markdown(MATHS[view], mathjax=True)


def grad_body(opened):
    """Callback: the body of view 1's maths panel."""
    return body(opened, "grad")


def register(app, view_id="view-tabs") -> None:
    """Render the maths panels' bodies when opened; the tabbed view's follows the open tab."""
    app.callback(Output(_body_id(GRAD_MATHS), "children"), Input(_summary_id(GRAD_MATHS), "n_clicks"),
                 prevent_initial_call=True)(grad_body)
    app.callback(Output(_body_id(VIEW_MATHS), "children"), Input(_summary_id(VIEW_MATHS), "n_clicks"),
                 Input(view_id, "value"), prevent_initial_call=True)(body)
