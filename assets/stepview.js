// Stepping through the frames of the "BPTT step by step" figure in the browser (no server round trip).
// The frames come with the figure (visualizer/unrolled.py); these functions only choose which one to show.
// The pure ones (target, keyAction) are tested in node: tests/visualizer/test_stepview_js.py.
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.stepview = {
    // The frame to show after `action` from frame `current` of `n`; `starts` are the indices where a phase
    // begins (for "phase-back" / "phase-next"). Always an index in [0, n - 1] (0 when n < 1).
    target: function (current, action, n, starts) {
        if (!(n >= 1)) { return 0; }
        let i = Number.isInteger(current) ? Math.min(Math.max(current, 0), n - 1) : 0;
        const s = (starts || []).filter(function (k) { return Number.isInteger(k) && k >= 0 && k < n; })
            .sort(function (a, b) { return a - b; });
        if (action === "next") { i = Math.min(i + 1, n - 1); }
        else if (action === "back") { i = Math.max(i - 1, 0); }
        else if (action === "first") { i = 0; }
        else if (action === "last") { i = n - 1; }
        else if (action === "phase-next") { const k = s.find(function (v) { return v > i; }); i = k === undefined ? n - 1 : k; }
        else if (action === "phase-back") {
            const before = s.filter(function (v) { return v < i; });
            i = before.length ? before[before.length - 1] : 0;
        }
        return i;
    },

    // The action of a key press, or null: arrows step, shift+arrows jump a phase, Home/End go to the ends.
    // Keys meant for a control are left alone: form fields (INPUT, TEXTAREA, SELECT, editable elements) and
    // widgets that use the arrow keys themselves (a slider thumb, radio buttons, tabs, lists, menus).
    keyAction: function (key, shift, tag, editable, role) {
        if (editable || ["INPUT", "TEXTAREA", "SELECT"].indexOf(String(tag).toUpperCase()) >= 0) { return null; }
        const own = ["slider", "spinbutton", "radio", "radiogroup", "tab", "tablist", "listbox", "option", "combobox",
                     "menu", "menuitem", "textbox", "scrollbar"];
        if (role && own.indexOf(String(role).toLowerCase()) >= 0) { return null; }
        if (key === "ArrowRight") { return shift ? "phase-next" : "next"; }
        if (key === "ArrowLeft") { return shift ? "phase-back" : "back"; }
        if (key === "Home") { return "first"; }
        if (key === "End") { return "last"; }
        return null;
    },

    // The graph's current frame (the phase slider follows every animated frame) and the phase starts;
    // null unless the graph shows the step-by-step figure (its first slider is named "phase").
    _frames: function (gd) {
        const layout = gd && gd._fullLayout;
        const slider = layout && layout.sliders && layout.sliders[0];
        if (!slider || slider.name !== "phase" || !gd._transitionData || !gd._transitionData._frames) { return null; }
        const starts = [];
        slider.steps.forEach(function (st, k) { if (st.label) { starts.push(k); } });
        return {current: slider.active, n: gd._transitionData._frames.length, starts: starts};
    },

    // An animation interrupted by the next click rejects its promise: that is expected, not an error.
    _quiet: function (promise) {
        if (promise && typeof promise.catch === "function") { promise.catch(function () { return null; }); }
    },

    _graph: function (constants) {
        const div = constants && typeof document !== "undefined" && document.getElementById(constants.graph);
        return div && div.classList.contains("js-plotly-plot") ? div : null;
    },

    // Do `action` on the graph whose id is `constants.graph`: "play" / "pause", or move to another frame.
    // Returns the frame shown (or null when the graph shows no stepped figure).
    go: function (action, constants) {
        const ns = window.dash_clientside.stepview;
        const gd = ns._graph(constants);
        const f = ns._frames(gd);
        if (!f) { return null; }
        if (action === "play") {
            ns._quiet(window.Plotly.animate(gd, null, {mode: "immediate", fromcurrent: true, transition: {duration: 0},
                                                       frame: {duration: constants.duration || 900, redraw: true}}));
            return f.current;
        }
        if (action === "pause") {
            ns._quiet(window.Plotly.animate(gd, [null], {mode: "immediate", frame: {duration: 0, redraw: false}}));
            return f.current;
        }
        const i = ns.target(f.current, action, f.n, f.starts);
        ns._quiet(window.Plotly.animate(gd, [String(i)], {mode: "immediate", frame: {duration: 0, redraw: true},
                                                           transition: {duration: 0}}));
        return i;
    },

    // Which toolbar button was clicked ("back", "next", "play", "pause"), from the triggering prop id.
    buttonAction: function (propId, constants) {
        if (!constants || typeof propId !== "string") { return null; }
        const id = propId.split(".")[0];
        const names = ["back", "next", "play", "pause"];
        for (let k = 0; k < names.length; k++) { if (constants[names[k]] === id) { return names[k]; } }
        return null;
    },

    // Clientside callback of the toolbar buttons. Returns the frame shown (into a store a test can read).
    buttons: function (nBack, nNext, nPlay, nPause, constants) {
        const ns = window.dash_clientside.stepview;
        const ctx = window.dash_clientside.callback_context;
        const trig = ctx && ctx.triggered && ctx.triggered.length ? ctx.triggered[0].prop_id : "";
        const action = ns.buttonAction(trig, constants);
        if (!action) { return window.dash_clientside.no_update; }
        const i = ns.go(action, constants);
        return i === null ? window.dash_clientside.no_update : i;
    },

    // Where the figure is drawn: [toolbar + plot style, view graph style]. The stepped figure (it has frames and
    // a "phase" slider) on the step-by-step tab goes to the plain div; anything else (another tab, a message
    // figure) stays in the view graph, as tall as the figure (see graphs.fit in graphs.js).
    placement: function (figure, tab, constants) {
        const stepped = !!(constants && tab === constants.view && figure && Array.isArray(figure.frames)
                           && figure.frames.length && figure.layout && figure.layout.sliders
                           && figure.layout.sliders.length && figure.layout.sliders[0].name === "phase");
        const graph = window.dash_clientside.graphs.fit(figure);  // as tall as its figure (graphs.js)
        return stepped ? [{}, {display: "none"}] : [{display: "none"}, graph];
    },

    // The stepped figure's height: in presentation mode as tall as the `room` the window leaves under the step
    // buttons (a projector shows buttons and figure at once), but never below the `least` height the figure says
    // keeps it readable (its layout.meta.min_height; FIT_MIN without one): a short window scrolls the page instead
    // of squeezing the figure. Never taller than built.
    FIT_MIN: 500,
    fitHeight: function (height, room, present, least) {
        const ns = window.dash_clientside.stepview;
        if (!present || !(room > 0) || !(height > 0)) { return height; }
        const floor = typeof least === "number" && least > 0 && isFinite(least) ? least : ns.FIT_MIN;
        return Math.max(Math.min(floor, height), Math.min(height, Math.floor(room)));
    },

    // The height to draw the stepped figure `layout` at in `div` (below the step buttons): see fitHeight.
    _fit: function (div, layout, present) {
        const ns = window.dash_clientside.stepview;
        if (!div.parentElement) { return layout.height; }
        const above = div.getBoundingClientRect().top - div.parentElement.getBoundingClientRect().top;
        return ns.fitHeight(layout.height, window.innerHeight - above - 8, present === true,
                            layout.meta && layout.meta.min_height);
    },

    // Size the plot div to `height` (graphs.fit: a resize keeps it, plotly.js sizing the plot to its div).
    _size: function (div, height) {
        div.style.height = "";
        Object.assign(div.style, window.dash_clientside.graphs.fit({layout: {height: height}}));
    },

    // Clientside callback: draw the stepped figure (data, layout and frames, sent once) into the plain div, in
    // presentation mode (`present`, the present store) fitted to the window, and fitted again after the window is
    // resized (refit) or presentation mode toggles (present-resize.js calls refit).
    render: function (figure, tab, present, constants) {
        const ns = window.dash_clientside.stepview;
        const styles = ns.placement(figure, tab, constants);
        const div = constants && document.getElementById(constants.graph);
        ns._shown = null;
        if (div && window.Plotly) {
            if (styles[0].display === "none") {
                if (div.classList.contains("js-plotly-plot")) { window.Plotly.purge(div); }
                div.style.height = "";
            } else {
                if (div.parentElement) { div.parentElement.style.display = ""; }  // visible before plotly sizes it
                const layout = Object.assign({}, figure.layout, {height: ns._fit(div, figure.layout, present)});
                ns._size(div, layout.height);
                ns._quiet(window.Plotly.react(div, {data: figure.data, layout: layout, frames: figure.frames,
                                                    config: constants.config || {displaylogo: false}}));
                ns._shown = {graph: constants.graph, layout: figure.layout, present: present};
                ns._listen();
            }
        }
        return styles;
    },

    // Fit the shown stepped figure to the window again (a resize, presentation mode toggled); the height drawn.
    refit: function () {
        const ns = window.dash_clientside.stepview;
        const s = ns._shown;
        const div = s && document.getElementById(s.graph);
        if (!div || !div.classList.contains("js-plotly-plot") || !div._fullLayout || !window.Plotly) { return null; }
        const height = ns._fit(div, s.layout, s.present);
        if (height !== div._fullLayout.height) {
            // the div at the new height, and plotly.js sizes the plot to it (a relayout of the height would fix the
            // width too, and later resizes would keep it)
            ns._size(div, height);
            ns._quiet(window.Plotly.Plots.resize(div));
        }
        return height;
    },

    // Installs the window resize handler once: refit REFIT_DELAY ms after the last resize event.
    REFIT_DELAY: 150,
    _listen: function () {
        const ns = window.dash_clientside.stepview;
        if (ns._listening) { return; }
        ns._listening = true;
        let timer = null;
        window.addEventListener("resize", function () {
            clearTimeout(timer);
            timer = setTimeout(ns.refit, ns.REFIT_DELAY);
        });
    },

    // Installs the arrow-key handler once (the constants store says which graph it drives).
    keys: function (constants) {
        const ns = window.dash_clientside.stepview;
        ns._constants = constants;
        if (!ns._installed && typeof document !== "undefined") {
            ns._installed = true;
            document.addEventListener("keydown", function (e) {
                const c = ns._constants;
                const t = e.target || {};
                const role = t.getAttribute ? t.getAttribute("role") : null;
                const action = ns.keyAction(e.key, e.shiftKey, t.tagName || "", !!t.isContentEditable, role);
                if (!c || !action || !document.getElementById(c.graph)) { return; }
                if (ns.go(action, c) !== null) { e.preventDefault(); }
            });
        }
        return window.dash_clientside.no_update;
    },
};
