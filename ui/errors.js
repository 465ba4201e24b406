// Loaded before the app: any uncaught error or rejected promise on the page
// is shown in a banner (and counted on <html data-js-errors>), so a broken
// page says so instead of looking empty, and the browser test can see it.
(function () {
  "use strict";
  var count = 0;
  function report(message) {
    count += 1;
    document.documentElement.setAttribute("data-js-errors", String(count));
    var show = function () {
      var box = document.getElementById("js-errors");
      if (!box) {
        box = document.createElement("div");
        box.id = "js-errors";
        box.className = "js-error";
        document.body.insertBefore(box, document.body.firstChild);
      }
      var line = document.createElement("div");
      line.textContent = "JavaScript error: " + message;
      box.appendChild(line);
    };
    if (document.body) { show(); } else { document.addEventListener("DOMContentLoaded", show); }
  }
  window.addEventListener("error", function (e) {
    report((e.message || "error") + (e.filename ? " (" + e.filename + ":" + e.lineno + ")" : ""));
  });
  window.addEventListener("unhandledrejection", function (e) {
    report("unhandled rejection: " + (e.reason && e.reason.message ? e.reason.message : String(e.reason)));
  });
})();
