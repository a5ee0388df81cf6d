// A graph as tall as its figure. The figures carry their height; plotly.js drops it on every resize
// (Plotly.Plots.resize, run on window resizes and when presentation mode toggles: present-resize.js) and
// sizes the plot to its container instead. A container with no height of its own then collapses to 0 px
// and the figure spills over the cards below it, so each graph's container is given its figure's height.
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.graphs = {
    // The style of a graph showing `figure`: its layout's height in px (no style when it has none).
    fit: function (figure) {
        const h = figure && figure.layout && figure.layout.height;
        return typeof h === "number" && h > 0 && isFinite(h) ? {height: h + "px"} : {};
    },
};
