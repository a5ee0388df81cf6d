// Presentation mode changes font sizes and hides the sidebar: re-lay out every Plotly graph so
// that none keeps its old size and overlaps its neighbours (seen in Chromium without a resize), and fit the
// step-by-step figure to the window again (its buttons lose their hint line in presentation mode).
(function () {
    function relayout() {
        if (!window.Plotly) { return; }
        document.querySelectorAll(".js-plotly-plot").forEach(function (gd) {
            try { window.Plotly.Plots.resize(gd); } catch (e) { /* a graph being replaced */ }
        });
        var steps = window.dash_clientside && window.dash_clientside.stepview;
        if (steps && steps.refit) { steps.refit(); }  // the stepped figure fitted to the window again
    }
    var state = null;
    function check() {
        var now = document.querySelector(".present") !== null;
        if (now !== state) {
            state = now;
            [60, 300, 1000].forEach(function (ms) { setTimeout(relayout, ms); });
        }
    }
    new MutationObserver(check).observe(document.documentElement,
        {attributes: true, attributeFilter: ["class"], subtree: true});
})();
