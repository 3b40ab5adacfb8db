/* Starts h5p-standalone on each .h5p-player and forwards H5P's xAPI events to Shuyuan. */
(function () {
  "use strict";
  var boxes = document.querySelectorAll(".h5p-player");
  Array.prototype.forEach.call(boxes, function (box) {
    var rid = box.dataset.resource;
    new H5PStandalone.H5P(box, {
      h5pJsonPath: box.dataset.base.replace(/\/$/, ""),
      frameJs: box.dataset.frameJs,
      frameCss: box.dataset.frameCss
    }).then(function () {
      window.Shuyuan.report(rid, "opened", {});
      if (window.H5P && H5P.externalDispatcher) {
        H5P.externalDispatcher.on("xAPI", function (event) {
          var statement = event && event.data && event.data.statement;
          if (statement) { window.Shuyuan.report(rid, "xapi", {statement: statement}); }
        });
      }
    }).catch(function (error) {
      box.textContent = "H5P: " + (error && error.message ? error.message : error);
    });
  });
})();
