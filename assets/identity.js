// A random id for this browser, kept in localStorage (visualizer.limits): the per-user job limit counts by it.
// Not a login: anyone can send any id. The accepted shape comes from Python (store user-id-rules).
(function (root) {
    "use strict";
    function assign(ts, current, rules) {
        var nu = root.dash_clientside.no_update;
        var pattern = new RegExp((rules && rules.pattern) || "^$");
        if (typeof current === "string" && pattern.test(current)) { return nu; }
        var bytes = new Uint8Array(16);
        root.crypto.getRandomValues(bytes);  // also on plain http (crypto.randomUUID needs https)
        return Array.from(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    }
    root.dash_clientside = Object.assign({}, root.dash_clientside);
    root.dash_clientside.identity = {assign: assign};
})(typeof window !== "undefined" ? window : globalThis);
