// Browser-side callbacks of visualizer/classroom.py (used through dash.ClientsideFunction("classroom", ...)).
// Pure functions of their arguments: tests/visualizer/test_clientside_js.py runs them in node.
window.dash_clientside = window.dash_clientside || {};
window.dash_clientside.classroom = {
    // A dropped file is read by the browser whatever its size: reject an over-size one before it
    // is sent (the server checks again). `limits` is the weights-limits-store: {max_bytes}.
    // Returns [pending upload, status text, status class, weights store].
    checkUpload: function (contents, filename, limits) {
        const nu = window.dash_clientside.no_update;
        if (!contents) { return [nu, nu, nu, nu]; }
        const maxBytes = limits && limits.max_bytes;
        const comma = contents.indexOf(",");
        const bytes = Math.floor((contents.length - comma - 1) * 3 / 4);  // base64 payload after "data:...,"
        if (typeof maxBytes === "number" && bytes > maxBytes) {
            const mb = (bytes / 1048576).toFixed(1);
            return [null, "Rejected: the file is " + mb + " MB, larger than the " + Math.floor(maxBytes / 1048576)
                    + " MB limit.", "upload-status error", null];
        }
        return [{contents: contents, filename: filename}, "Checking " + filename + "…", "upload-status", nu];
    },

    // The Remove button shows only while an upload is loaded.
    removeButtonStyle: function (meta) {
        return meta ? {} : {display: "none"};
    },

    // Remove: forget the file, the pending upload, the status and the checked upload.
    removeUpload: function (nClicks) {
        return [null, null, null, "", "upload-status", null];
    },

    // Presentation mode is on when the page element carries the class "present" (the figures
    // scale with it: visualizer.framing.present_figure).
    isPresent: function (className) {
        return String(className || "").split(/\s+/).indexOf("present") >= 0;
    },
};
