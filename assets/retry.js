// The page survives a server worker that dies mid-request: a request to the app's own endpoints
// (/_dash-...) that fails on the network (connection reset) or with 502/503/504 is sent again, up to
// RETRIES times with a growing pause. Callbacks are functions of their inputs, so resending is safe.
// One exception: a training start whose first attempt had already queued its job meets the per-user
// limit when resent, and the page says so (that job runs to its end or time limit unseen).
(function (root) {
    "use strict";
    var RETRIES = 3;
    var PAUSE_MS = [250, 750, 2000];
    var RETRY_STATUS = [502, 503, 504];

    function isAppRequest(input) {
        var url = typeof input === "string" ? input : (input && input.url) || "";
        return url.indexOf("/_dash-") !== -1;
    }

    function withRetries(fetchFn, sleep) {
        return function (input, init) {
            if (!isAppRequest(input)) { return fetchFn(input, init); }
            var attempt = 0;
            function retry(error) {
                if (attempt >= RETRIES || (error && error.name === "AbortError")) { throw error; }
                return sleep(PAUSE_MS[attempt++]).then(again);
            }
            function again() {
                return fetchFn(input, init).then(function (response) {
                    if (RETRY_STATUS.indexOf(response.status) !== -1 && attempt < RETRIES) {
                        return sleep(PAUSE_MS[attempt++]).then(again);
                    }
                    return whole(response);
                }).catch(retry);
            }
            return again();
        };
    }

    // The response with its body read to the end: a connection cut after the headers fails here
    // (and is retried) instead of in the renderer.
    function whole(response) {
        if (typeof response.arrayBuffer !== "function" || typeof root.Response !== "function") { return response; }
        return response.arrayBuffer().then(function (body) {
            var empty = response.status === 204 || response.status === 304;
            return new root.Response(empty ? null : body, {status: response.status, statusText: response.statusText,
                                                          headers: response.headers});
        });
    }

    function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

    root.bpttlabRetry = {withRetries: withRetries, isAppRequest: isAppRequest, RETRIES: RETRIES};
    if (typeof root.fetch === "function" && !root.fetch.bpttlabRetries) {
        var wrapped = withRetries(root.fetch.bind(root), sleep);
        wrapped.bpttlabRetries = true;
        root.fetch = wrapped;
    }
})(typeof window !== "undefined" ? window : globalThis);
