/* Runs INSIDE the sandboxed package frame (opaque origin, no cookies, no access to the
 * page).  Plays the package with h5p-standalone and tells the page what happened by
 * postMessage only: {shuyuan: "package", launch, type: "opened" | "xapi" | "resize", ...}.
 * The page checks the sender window, its origin and the launch id before acting. */
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.hash.slice(1));
  var launch = params.get("launch") || "";
  var parentOrigin = params.get("origin") || "";

  function send(type, extra) {
    if (!launch || !parentOrigin || window.parent === window) { return; }
    var message = {shuyuan: "package", launch: launch, type: type};
    Object.keys(extra || {}).forEach(function (key) { message[key] = extra[key]; });
    window.parent.postMessage(message, parentOrigin);
  }

  // This page is <package>/~player/frame.html: the package folder is one level up.
  var here = window.location.href.split("#")[0];
  var base = new URL("../", here).href.replace(/\/$/, "");
  var box = document.getElementById("h5p");
  new H5PStandalone.H5P(box, {
    // This document already is the isolation; a nested frame in an opaque-origin
    // sandbox would get an origin of its own, which h5p-standalone cannot script.
    embedType: "div",
    h5pJsonPath: base,
    frameJs: new URL("vendor/h5p-standalone/frame.bundle.js", here).href,
    frameCss: new URL("vendor/h5p-standalone/styles/h5p.css", here).href
  }).then(function () {
    send("opened", {});
    if (window.H5P && H5P.externalDispatcher) {
      H5P.externalDispatcher.on("xAPI", function (event) {
        var statement = event && event.data && event.data.statement;
        if (statement) { send("xapi", {statement: JSON.parse(JSON.stringify(statement))}); }
      });
    }
  }).catch(function (error) {
    box.textContent = "H5P: " + (error && error.message ? error.message : error);
  });

  var lastHeight = 0;
  function reportHeight() {
    var height = document.documentElement.scrollHeight;
    if (height !== lastHeight) { lastHeight = height; send("resize", {height: height}); }
  }
  if (window.ResizeObserver) { new ResizeObserver(reportHeight).observe(document.body); }
  window.addEventListener("load", reportHeight);
})();
