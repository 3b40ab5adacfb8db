// The textbook browser works with plain links; this only keeps the chosen part of the
// table of contents in view on a long list (no behaviour depends on it).
(function () {
  "use strict";
  var current = document.querySelector(".tb-toc a.on");
  if (current && current.scrollIntoView) { current.scrollIntoView({ block: "nearest" }); }
})();
