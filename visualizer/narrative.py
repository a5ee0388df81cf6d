"""Explanation templates: sentences whose every number is measured on the data on screen.

A template takes the records of :mod:`visualizer.facts` (or a view's payload) and returns text
with the numbers filled in, so a sentence stays true when a control changes; where the data
could make a sentence false, the template says something else. Numbers are printed to three
significant digits (:func:`num`), which is the precision the tests check them at. A bound is
called a bound: sigma_1(W_hh) < 1/gamma is sufficient for vanishing, sigma_1 > 1/gamma only
necessary for exploding. Nothing here imports dash or plotly.
"""
from __future__ import annotations

import math

from . import facts, payloads
from .fmt import decades, mib, num, pct, rate, sub

CLOSE = 0.05  # "close to": relative difference below this


def close(a, b) -> bool:
    """Whether a and b differ by less than CLOSE relative to b."""
    return math.isfinite(a) and math.isfinite(b) and b != 0 and abs(a - b) < CLOSE * abs(b)


# ----------------------------------------------------------------------------- pieces
def pascanu(w: facts.WeightFacts) -> str:
    """What Pascanu et al.'s condition says for a plain RNN's weights: a bound, not a rate."""
    s, thr = num(w.sigma1), num(w.threshold)
    if w.sigma1 < w.threshold:
        return f"σ₁(W_hh) = {s} < 1/γ = {thr}, so the bound (γσ₁)ᵏ shrinks and vanishing is guaranteed"
    if w.sigma1 == w.threshold:
        return (f"σ₁(W_hh) = {s} = 1/γ, so the bound (γσ₁)ᵏ stays 1: exploding is impossible "
                f"and vanishing is not guaranteed")
    return (f"σ₁(W_hh) = {s} > 1/γ = {thr}, so the bound (γσ₁)ᵏ grows and guarantees nothing "
            f"(σ₁ > 1/γ is necessary for exploding, not sufficient)")


def verdict(w: facts.WeightFacts, j: facts.JacobianFacts) -> str:
    """The Jacobians tab's line for one architecture: the measured rate, then what the weights bound."""
    head = f"{j.name}: measured {rate(j.rate)} per step (fit over the lags)"
    if w.plain:
        return f"{head}; {pascanu(w)}."
    return (f"{head}; σ₁(W_hh) = {num(w.sigma1)}, but the gates add paths around W_hh, so no σ₁ bound "
            f"applies.")


def landing_note(grads, next_title: str, next_bias) -> str | None:
    """A next step when every line on view 1 falls by more than three decades (PyTorch's default
    initialisation does that at the app's defaults): say so with the measured rates, and point at
    a preset (``next_title``, whose LSTM forget bias is ``next_bias``) where one does not."""
    if not grads or any(not (g.T > 1 and 0 < g.ratio < 1e-3) for g in grads):
        return None
    rates = ", ".join(f"{g.name} {rate(g.rate)}" for g in grads)
    best = max(grads, key=lambda g: g.ratio)
    return (f"Every network here loses its gradient going back ({rates} per step on average); even the "
            f"{best.name} keeps only {num(best.ratio)} of it over {best.T - 1} steps. At this initialisation "
            f"nothing carries gradient far. Next: “{next_title}”, or set the LSTM forget-gate bias to "
            f"{num(next_bias)}.")


# ----------------------------------------------------------------------------- presets
def vanishing(g: facts.GradFacts, w: facts.WeightFacts, j: facts.JacobianFacts) -> str:
    """The vanishing preset: view 1's ratio, the measured rate, and why sigma_1 does not explain it."""
    estimate = w.rho * w.dphi
    near = "close to" if close(estimate, j.rate) else "unlike"
    return (f"The loss sits at the last step; follow its gradient back in time: each step multiplies it by the "
            f"Jacobian Jₜ = diag(1 − hₜ²) W_hh, and ‖∂L/∂h₀‖ is {num(g.ratio)} of ‖∂L/∂h{sub(g.T - 1)}‖ "
            f"({rate(g.rate)} per step on average; Bengio et al. 1994). "
            f"Pascanu et al.'s bound {'explains it' if w.sigma1 < w.threshold else 'does not explain it'}: "
            f"{pascanu(w)}. "
            f"The Jacobians tab measures {rate(j.rate)} per step, {near} ρ(W_hh) · mean tanh′ = "
            f"{num(w.rho)} · {num(w.dphi)} = {num(estimate)}, a heuristic built on the spectral radius, not on σ₁. "
            f"In the heatmap, the left side is dark.")


def exploding(scale, gs: dict, ws: dict, gates: dict) -> str:
    """The exploding preset: the RNN explodes, the gated networks (unsaturated) do not."""
    g, w = gs["rnn"], ws["rnn"]
    grows = (f"a decade every {num(1 / math.log10(g.rate))} steps" if g.rate > 1
             else "so it does not grow on average")
    lstm, gru = gs["lstm"], gs["gru"]
    gl, gg = gates["lstm"], gates["gru"]
    return (f"W_hh is an orthogonal matrix times {num(scale)}: every eigenvalue has modulus ρ(W_hh) = {num(w.rho)}, "
            f"and σ₁(W_hh) = {num(w.sigma1)} > 1/γ = {num(w.threshold)}, which is necessary for exploding, "
            f"not sufficient. "
            f"The tanh RNN's state stays bounded but its gradient grows going back: ‖∂L/∂h₀‖ is {num(g.ratio)} "
            f"times ‖∂L/∂h{sub(g.T - 1)}‖, {rate(g.rate)} per step, {grows} "
            f"(Pascanu et al. 2013). "
            f"The LSTM and GRU have blocks of the same scale in W_hh but their Jacobians weight them by gate "
            f"values and gate derivatives: ‖∂L/∂h₀‖ / ‖∂L/∂h{sub(g.T - 1)}‖ is {num(lstm.ratio)} for the LSTM and "
            f"{num(gru.ratio)} for the GRU ({decades(gru.ratio)} decades). "
            f"Their gates are not saturated: {pct(gl.total)} of the LSTM's and {pct(gg.total)} of the GRU's "
            f"sigmoid gate values lie beyond {num(gl.low)}/{num(gl.high)}.")


def forget_bias(bias, rnn: facts.GradFacts, lstm: facts.GradFacts, gate: facts.GateFacts) -> str:
    """The forget-bias-1 preset: the LSTM keeps more than the RNN but still fades."""
    f_mean = gate.mean[gate.names.index("f")]
    kept = decades(lstm.ratio / rnn.ratio) if rnn.ratio > 0 else "NaN"
    less = "less" if rnn.ratio < lstm.ratio else "more"
    faster = "faster" if gate.path < lstm.ratio else "slower"
    return (f"The LSTM's cell passes its gradient back through the forget gates, cₜ₋₁ gets fₜ times the "
            f"gradient of cₜ, and a forget bias of {num(bias)} (Gers et al. 2000; Jozefowicz et al. 2015) gives "
            f"a mean f of {num(f_mean)}. "
            f"Over {lstm.T - 1} steps the LSTM's gradient still fades, to {num(lstm.ratio)} of its last value "
            f"({rate(lstm.rate)} per step on average), but the RNN's falls to {num(rnn.ratio)}: "
            f"{kept} orders of magnitude {less}. "
            f"The cell path alone fades {faster}, ∏ f = {num(gate.path)} over the sequence (Gating tab), so the "
            f"rest of the LSTM's Jacobian carries gradient too. "
            f"Set the bias to 0 and compare.")


def long_memory(bias, rnn: facts.GradFacts, lstm: facts.GradFacts, gate: facts.GateFacts,
                jac: facts.JacobianFacts) -> str:
    """The forget-bias-5 preset: the gradient is kept, but not by the forget gates alone."""
    f_mean = gate.mean[gate.names.index("f")]
    T = lstm.T
    log_t = math.log(T - 1)
    sig = 1 / (1 + math.exp(-log_t))
    return (f"With a forget bias of {num(bias)} the mean forget gate is {num(f_mean)}, and ∏ f over the "
            f"{T - 1} steps is {num(gate.path)} (Gating tab). "
            f"The LSTM's ‖∂L/∂h₀‖ is {num(lstm.ratio)} of ‖∂L/∂h{sub(T - 1)}‖, the tanh RNN's {num(rnn.ratio)}; "
            f"but the forget gates alone do not carry it: ‖∂L/∂hₜ‖ dips to {num(lstm.low)} of its last value at "
            f"t = {lstm.low_step} and regrows, and the whole state Jacobian ‖∂s{sub(T - 1)}/∂sₜ‖ reaches "
            f"{num(jac.peak)} at lag {jac.peak_lag} (Jacobians tab): a mildly growing mode. "
            f"A bias b_f = ln(T−1) = {num(log_t)} would give σ(b_f)^(T−1) = {num(sig ** (T - 1))}; chrono "
            f"initialisation (Tallec & Ollivier 2018) draws b_f = ln u with u uniform in [1, T−1] and sets b_i = −b_f.")


def irnn(relu: facts.GradFacts, tanh: facts.GradFacts, w: facts.WeightFacts, wt: facts.WeightFacts,
         jr: facts.JacobianFacts) -> str:
    """The IRNN preset: ReLU keeps the gradient, tanh with the same weights loses it."""
    radius = (f"ρ(W_hh) = σ₁(W_hh) = {num(w.sigma1)}" if close(w.rho, w.sigma1)
              else f"ρ(W_hh) = {num(w.rho)}, σ₁(W_hh) = {num(w.sigma1)}")
    return (f"W_hh = I and zero biases (Le et al. 2015): {radius}, so an active ReLU "
            f"unit passes its gradient back unchanged. "
            f"The ReLU RNN's ‖∂L/∂hₜ‖ stays within a factor of {num(1 / relu.low)} of its last value over "
            f"{relu.T - 1} steps (Jacobians tab: {rate(jr.rate)} per step). "
            f"The tanh RNN has the same weights, but tanh′ < 1 (mean {num(wt.dphi)}) shrinks the gradient at "
            f"every step: ‖∂L/∂h₀‖ is {num(tanh.ratio)} of ‖∂L/∂h{sub(tanh.T - 1)}‖.")


def clipping(clip, b: facts.BlowUpFacts) -> str:
    """The clipping preset: what happens without clipping, and what clipping bounds."""
    first, nxt = b.grad_norms[0], b.grad_norms[1] if len(b.grad_norms) > 1 else math.nan
    end = (f"the loss or gradient overflows at step {b.diverged_step}" if b.diverged_step
           else f"no overflow within {len(b.grad_norms)} steps")
    if b.optimizer == "sgd" and b.momentum == 0:
        update = f"with plain SGD each step is then at most lr · c = {num(b.lr * clip)} long"
    elif b.optimizer == "sgd":
        update = (f"the update is not the clipped gradient itself: SGD with momentum {num(b.momentum)} adds up "
                  f"clipped gradients, so each step is at most lr · c / (1 − momentum) = "
                  f"{num(b.lr * clip / (1 - b.momentum))} long (a bound)")
    else:
        update = "Adam rescales each parameter's step, so the update is not the clipped gradient"
    return (f"Train this IRNN with {b.optimizer.upper() if b.optimizer == 'sgd' else 'Adam'} at learning rate "
            f"{num(b.lr)}: without clipping, the first gradient has norm {num(first)} and its update lifts σ₁(W_hh) "
            f"from {num(b.sigma_before)} to {num(b.sigma_after)}; the next gradient has norm {num(nxt)} and {end}. "
            f"Clipping at c = {num(clip)} (Pascanu et al. 2013) rescales the gradient to norm at most c, keeping its "
            f"direction; {update}. "
            f"The marked steps were clipped; clear the clipping box to see the blow-up.")


def truncation(window, gs) -> str:
    """The truncation preset: exactly zero before the last window."""
    start = max((g.first_nonzero or 0) for g in gs)
    T = gs[0].T
    return (f"With truncation {window} the state is detached every {window} steps, as PyTorch code does when it "
            f"runs chunks and calls detach between them. "
            f"The loss is at the last step, so only the last window, steps {start} to {T - 1}, gets any gradient: "
            f"before step {start} ‖∂L/∂hₜ‖ is exactly 0, not small (the strip under the plot marks it). "
            f"The network cannot learn a dependency longer than its window.")


def cost(window, memory: dict, T: tuple, errors: dict, exact: float, slower: float) -> str:
    """The cost preset: memory per method at the sweep's ends, truncation's gradient error per
    architecture at the window, the exact methods' error and RTRL's time against BPTT's.

    ``memory``: method label -> (bytes at T[0], bytes at T[1]); ``errors``: name -> relative error of
    the truncated gradient; ``exact``: the largest relative error of checkpointing and RTRL;
    ``slower``: RTRL's seconds over full BPTT's at T[1]."""
    full = memory["full BPTT"]
    others = "; ".join(f"{label}: {mib(m[1])}" for label, m in memory.items() if label != "full BPTT")
    worst = max(errors, key=errors.get)
    errs = ", ".join(f"{name} {num(e)}" for name, e in errors.items())
    return (f"Full BPTT keeps every step's activations: from T = {T[0]} to T = {T[1]} its memory grows "
            f"{num(full[1] / full[0])}-fold, to {mib(full[1])} (the others at T = {T[1]}: {others}; top panels). "
            f"Truncation at k = {window} pays with a biased gradient, relative error {errs}: the {worst} loses "
            f"most. Checkpointing and RTRL give the exact gradient (relative error at most {num(exact)}), "
            f"checkpointing by recomputing steps and RTRL at {num(slower)} times full BPTT's time at T = {T[1]}.")


def bptt_steps(p) -> str:
    """The step-by-step preset: one iteration's loss, the gradient at the first and last step, how
    many steps make up 90% of dL/dW_hh, the clipping rescale and the loss after the update.
    ``p``: a :class:`visualizer.stepview.StepPayload`."""
    w, T = p.walk, p.T
    shares, total = w.contributions.shares[-1], float(w.contributions.total[-1])
    top = sorted(shares, reverse=True)
    n = next((i + 1 for i in range(T) if sum(top[: i + 1]) >= 0.9 * total), T)
    if w.clip is None:
        clip = f"no clipping is set (‖g‖ = {num(w.grad_norm)})"
    elif w.clipped:
        clip = (f"clipping at c = {num(w.clip)} multiplies the gradient by {num(w.clip_scale)} "
                f"(‖g‖ = {num(w.grad_norm)})")
    else:
        clip = f"‖g‖ = {num(w.grad_norm)} is below the clipping threshold {num(w.clip)}"
    change = "lower" if w.next_loss < w.loss else "not lower"
    opt = "SGD" if w.optimizer == "sgd" else "Adam"
    return (f"Step through one iteration of BPTT with Step or the → key: the forward pass fills the {T} states, "
            f"then every step's loss appears (L = {num(w.loss)}). Going back, ‖∂L/∂h{sub(T - 1)}‖ = "
            f"{num(w.hidden_grad_norms[-1, T - 1])} at the last step and ‖∂L/∂h{sub(0)}‖ = "
            f"{num(w.hidden_grad_norms[-1, 0])} at the first; the {n} largest of the {T} steps' shares make up "
            f"90% of ‖∂L/∂W_hh‖ = {num(total)}. Then {clip}, and after one {opt} step the loss on the same "
            f"batch is {num(w.next_loss)}, {change} than before.")


# ----------------------------------------------------------------------------- view notes
def _join(*parts) -> str | None:
    parts = [p for p in parts if p]
    return " ".join(parts) if parts else None


def jacobian_note(keys) -> str | None:
    """The Jacobians tab's computed lines: each architecture's measured rate and what its weights bound."""
    lines = [verdict(facts.weight_facts(k), facts.jacobian_facts(k)) for k in keys]
    return _join(*lines, payloads.jacobian_note(keys))


def _value(x) -> str:
    """A quoted number, or what a non-finite one means (never "NaN" as a figure)."""
    return num(x) if math.isfinite(x) else "no finite value (overflow)"


def gates_note(keys) -> str | None:
    """The Gating tab's computed lines: each gated network's path product over the sequence beside
    its whole Jacobian norm; where the size allows only the last steps of the whole Jacobian, the
    path over those same steps beside it."""
    lines = []
    for k in keys:
        if k.arch.startswith("rnn"):
            continue
        g, j = facts.gate_facts(k), facts.jacobian_facts(k)
        T, s, gate = k.data.seq_len, j.from_step, g.path_gate
        whole = f"whole ‖∂s{sub(T - 1)}/∂s{sub(s)}‖ = {_value(j.at_last_lag)}"
        if s == 0:
            lines.append(f"{g.name}: ∏ {gate} from step 0 = {_value(g.path)}, {whole}.")
        else:
            lines.append(f"{g.name}: ∏ {gate} from step 0 = {_value(g.path)}. At this size the whole Jacobian is "
                         f"computed over the last {T - 1 - s} steps only: there ∏ {gate} = "
                         f"{_value(facts.gate_path(k, s))}, {whole}.")
    return _join(*lines, payloads.gates_note(keys))
