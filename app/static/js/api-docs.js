// Kept in a file (not inline) so the page works under a strict Content-Security-Policy.
(function () {
  var specUrl = document.currentScript.getAttribute("data-spec-url");
  window.ui = SwaggerUIBundle({ url: specUrl, dom_id: "#swagger-ui", deepLinking: true });
})();
