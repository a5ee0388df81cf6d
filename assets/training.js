// The live-training card's browser side (visualizer.training_ui): it merges the job's progress and
// result payloads into the stores the figures are drawn from. Its numbers (redraw interval, step range)
// come from Python through the store train-constants, so none is copied here.
(function (root) {
    "use strict";
    // record, status, checkpoint, slider max, slider value, marks, bar, status line, message, view token,
    // slider min, slider disabled
    var OUTPUTS = 12;

    // The record and status line this page wrote last. The callbacks below share those outputs and read
    // them back as State, and Dash does not order callbacks by a store they both read and write: two of
    // them (Reset and a progress payload, a job's result and the end of its progress) can run on the
    // same old State, and the one applied last would silently undo the other. So each reads what the
    // previous one wrote here (callbacks run, and are applied, in turn), the State only before any wrote.
    var latest = {};

    function current(name, state) {
        return Object.prototype.hasOwnProperty.call(latest, name) ? latest[name] : state;
    }

    // Remember what `out` (the twelve outputs) writes to the record and the status line.
    function wrote(out) {
        var nu = root.dash_clientside.no_update;
        if (out[0] !== nu) { latest.record = out[0]; }
        if (out[7] !== nu) { latest.text = out[7]; }
        return out;
    }

    function noUpdates() {
        var nu = root.dash_clientside.no_update;
        return Array.from({length: OUTPUTS}, function () { return nu; });
    }

    // One payload (progress while the job runs, or its final result) -> the twelve outputs. The snapshot
    // slider is enabled only once the record holds a snapshot, and its min never exceeds its max.
    function merge(p, record, final, running, constants, now) {
        var nu = root.dash_clientside.no_update;
        if (!p || (record && record.dropped)) { return noUpdates(); }
        var out = noUpdates();
        if (p.error) {
            out[7] = record && record.step ? "Step " + record.step + " (stopped)." : "Not started.";
            out[8] = p.error;
            return out;
        }
        if (p.queued) {
            out[7] = "Queued (position " + p.queued + "): waiting for a free training slot…";
            return out;
        }
        if (!p.archs) { return out; }
        var same = !!(record && record.run === p.run);
        var hist = Object.keys(p.archs).map(function (a) { return p.archs[a]; });
        var step = Math.max.apply(null, [0].concat(hist.map(function (h) { return h.step; })));
        // progress that a newer payload of this run already covers (it arrived late) changes nothing
        if (!final && same && (step < record.step || (step === record.step && record.final))) { return out; }
        var snaps = Object.assign({}, same ? record.snaps : {});
        (p.snaps || []).forEach(function (s) {
            var list = (snaps[s.arch] || []).slice();
            if (!list.some(function (x) { return x.step === s.step; })) {
                list.push(s);
                list.sort(function (a, b) { return a.step - b.step; });
            }
            snaps[s.arch] = list;
        });
        var archs = {};
        Object.keys(p.archs).forEach(function (a) {
            archs[a] = Object.assign({}, (same && record.archs && record.archs[a]) || {}, p.archs[a]);
        });
        var total = hist.length ? hist[0].steps : 0;
        var done = p.status === "done";
        var rec = {run: p.run, key: p.key, every: p.every, archs: archs, snaps: snaps, status: p.status, step: step,
                   final: final};
        var all = {};
        Object.keys(snaps).forEach(function (a) { snaps[a].forEach(function (s) { all[s.step] = true; }); });
        var steps = Object.keys(all).map(Number).sort(function (a, b) { return a - b; });
        var status = {run: p.run, key: p.key, step: step, done: done, status: p.status};
        var ckpt = p.checkpoint ? {run: p.run, step: p.checkpoint.step, data: p.checkpoint.data} : nu;
        var every = p.every || 1;
        var marks = {};
        marks[every] = String(every);
        marks[total] = String(total);
        var losses = hist.map(function (h) {
            var shown = typeof h.loss === "number" ? h.loss.toPrecision(3) : h.loss;
            return h.name + " " + (h.diverged ? "diverged" : "loss " + shown);
        }).join(" · ");
        var clipped = hist.reduce(function (n, h) { return n + (h.n_clipped || 0); }, 0);
        var state = final ? (done ? "done" : "paused") : (running ? "training" : "paused");
        var text = "Step " + step + " / " + total + " (" + state + ") · " + losses + (clipped ? " · " + clipped + " clipped" : "");
        var top = steps.length ? Math.max(every, Math.ceil(steps[steps.length - 1] / every) * every) : 0;
        var bottom = steps.length ? every : 0;
        var redraw = final || !record || !same || !record.drawn || now - record.drawn > constants.redraw_ms;
        rec.drawn = redraw ? now : record.drawn;
        return [rec, status, ckpt, top, redraw ? top : nu, steps.length ? marks : {}, String(step), text,
                p.note || "", redraw ? {t: now, live: !final} : nu, bottom, !steps.length];
    }

    root.dash_clientside = Object.assign({}, root.dash_clientside);
    root.dash_clientside.training = {
        merge: merge,
        // a progress payload of the running job (Pause enabled = the job runs)
        merge_progress: function (p, record, pauseDisabled, constants) {
            return wrote(merge(p, current("record", record), false, !pauseDisabled, constants || {}, Date.now()));
        },
        // the job's final result
        merge_result: function (p, record, constants) {
            return wrote(merge(p, current("record", record), true, false, constants || {}, Date.now()));
        },
        // Reset: forget the run; late progress of the cancelled job is ignored until the next start
        reset: function () {
            return wrote([{dropped: true}, null, null, 0, 0, {}, "0", "Ready.", "", {t: Date.now()}, 0, true]);
        },
        // a new start accepts payloads again
        start: function (play, step, record) {
            record = current("record", record);
            if (!(record && record.dropped)) { return root.dash_clientside.no_update; }
            latest.record = null;
            return null;
        },
        // a job that ended without a result (Pause cancelled it): the status line says so
        stopped: function (pauseDisabled, text) {
            var nu = root.dash_clientside.no_update;
            text = current("text", text);
            if (!pauseDisabled || typeof text !== "string") { return nu; }
            var shown = text.replace("(training)", "(paused)").replace(/^Queued.*$/, "Ready.");
            if (shown === text) { return nu; }
            latest.text = shown;
            return shown;
        },
        // the number of steps typed -> progress bar maximum and slider step (its range comes with snapshots)
        steps_range: function (steps, constants) {
            var n = Math.round(Number(steps));
            n = n >= 1 ? Math.min(n, constants.max_steps) : constants.default_steps;
            var every = Math.max(1, Math.ceil(n / constants.max_recorded));
            return [String(n), every];
        }
    };
})(typeof window !== "undefined" ? window : globalThis);
