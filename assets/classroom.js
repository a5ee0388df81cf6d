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

    // The server answering a page change had lost the upload (its info line says `limits.missing`):
    // send the file, still in the pending store, again; once per upload (`resent` holds its digest),
    // so a server that cannot keep it is not asked forever. Sets the pending store `limits.pending`
    // (with set_props: an output would chain it to the page callback, which Dash then does not
    // run again) and returns what it set, or no_update.
    resendUpload: function (info, meta, pending, limits) {
        const dc = window.dash_clientside;
        const marker = limits && limits.missing;
        const digest = meta && meta.digest;
        if (typeof marker !== "string" || !marker || typeof digest !== "string" || !pending || !pending.contents
                || pending.resent === digest || JSON.stringify(info || "").indexOf(marker) < 0) {
            return dc.no_update;
        }
        const again = Object.assign({}, pending, {resent: digest});
        if (typeof dc.set_props === "function" && typeof limits.pending === "string") {
            dc.set_props(limits.pending, {data: again});
        }
        return again;
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
