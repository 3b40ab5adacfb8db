/* Page side of the H5P player.  The package plays in <iframe sandbox="allow-scripts">
 * (opaque origin, or the separate content host); this script accepts a message only
 * when it comes from that very frame's window, from the expected origin, with this
 * launch's id, and only of the known kinds.  Statements are sent on with the viewer's
 * session and CSRF token by Shuyuan.report; the server validates them again. */
(function () {
  "use strict";
  var MAX_STATEMENT_CHARS = 65536;
  var MAX_STATEMENTS = 500;  // per launch: a package cannot flood the viewer's record
  var frames = document.querySelectorAll("iframe.h5p-frame");
  Array.prototype.forEach.call(frames, function (frame) {
    var resource = frame.dataset.resource;
    var launch = frame.dataset.launch;
    var expectedOrigin = frame.dataset.origin;
    var opened = false;
    var sent = 0;
    window.addEventListener("message", function (event) {
      if (event.source !== frame.contentWindow || event.origin !== expectedOrigin) { return; }
      var data = event.data;
      if (!data || typeof data !== "object" || data.shuyuan !== "package" || data.launch !== launch) {
        return;
      }
      if (data.type === "opened" && !opened) {
        opened = true;
        window.Shuyuan.report(resource, "opened", {});
      } else if (data.type === "xapi") {
        var statement = data.statement;
        if (!statement || typeof statement !== "object" || Array.isArray(statement)) { return; }
        var text;
        try { text = JSON.stringify(statement); } catch (error) { return; }
        if (text.length > MAX_STATEMENT_CHARS || sent >= MAX_STATEMENTS) { return; }
        sent += 1;
        window.Shuyuan.report(resource, "xapi", {statement: JSON.parse(text)});
      } else if (data.type === "resize") {
        var height = Number(data.height);
        if (isFinite(height)) { frame.style.height = Math.max(150, Math.min(height, 4000)) + "px"; }
      }
    });
  });
})();
