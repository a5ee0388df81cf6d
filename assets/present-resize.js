// Presentation mode changes font sizes and hides the sidebar: re-lay out every Plotly graph so
// that none keeps its old size and overlaps its neighbours (seen in Chromium without a resize).
(function () {
    function relayout() {
        if (!window.Plotly) { return; }
        document.querySelectorAll(".js-plotly-plot").forEach(function (gd) {
            try { window.Plotly.Plots.resize(gd); } catch (e) { /* a graph being replaced */ }
        });
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
