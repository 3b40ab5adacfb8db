// Small progressive enhancements; every page works without them.
(function () {
  // On a phone, fold the catalog filters away until asked for (unless some are active).
  if (window.matchMedia && window.matchMedia("(max-width: 760px)").matches) {
    document.querySelectorAll("details[data-collapsible]").forEach(function (el) { el.open = false; });
  }
})();
