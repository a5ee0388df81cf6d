// Back / forward: the app reads its state from the URL only when the page loads, so reload.
window.addEventListener("popstate", function () { window.location.reload(); });
