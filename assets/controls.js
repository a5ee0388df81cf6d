// Browser-side callbacks of the control panel (visualizer/callbacks.py, through
// dash.ClientsideFunction("controls", ...)). Pure functions of their arguments:
// tests/visualizer/test_clientside_js.py runs them in node.
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.controls = {
    // The scale slider's field is muted (with its hint shown) under an initialisation that ignores
    // the scale. `constants` is the scale-hint-store: {unscaled: [initialisation names]}.
    scaleFieldClass: function (init, constants) {
        const unscaled = (constants && Array.isArray(constants.unscaled)) ? constants.unscaled : [];
        return unscaled.indexOf(init) >= 0 ? "field field--muted" : "field";
    },
};
