// Kept in a file (not inline) so the page works under a strict Content-Security-Policy.
(function () {
  var specUrl = document.currentScript.getAttribute("data-spec-url");
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.content : "";
  window.ui = SwaggerUIBundle({
    url: specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    // "Try it out" after "Authorize" sends the bearer token, which needs no CSRF token.
    // Without one, the browser's session cookie authenticates the call, and the server
    // then wants this page's CSRF token (same origin only: never sent elsewhere).
    requestInterceptor: function (request) {
      var headers = request.headers || (request.headers = {});
      var bearer = headers.Authorization || headers.authorization;
      var target = new URL(request.url, window.location.href);
      if (!bearer && csrf && target.origin === window.location.origin) {
        headers["X-CSRFToken"] = csrf;
      }
      return request;
    }
  });
})();
