// Starts Swagger UI on /api/v1/docs. It lives in a file because the Content-Security-Policy forbids inline
// scripts. "Try it out" works with an API token (Authorize button) or with the browser's session cookie:
// for the cookie, writes need the X-CSRF-Token header, which is fetched from /api/v1/auth/me when first needed.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var csrf = null;

  function csrfToken() {
    if (csrf !== null) return Promise.resolve(csrf);
    return fetch("/api/v1/auth/me", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : {}; })
      .then(function (me) { csrf = (me && me.csrf_token) || ""; return csrf; })
      .catch(function () { return ""; });
  }

  function hasHeader(headers, name) {
    return Object.keys(headers || {}).some(function (k) { return k.toLowerCase() === name; });
  }

  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    deepLinking: true,
    docExpansion: "none", // tags closed at first: the page draws quickly however many operations there are
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (req) {
      var method = (req.method || "GET").toUpperCase();
      if (method === "GET" || method === "HEAD" || method === "OPTIONS" || hasHeader(req.headers, "authorization")) {
        return req;
      }
      return csrfToken().then(function (token) {
        if (token) req.headers["X-CSRF-Token"] = token;
        return req;
      });
    },
  });
})();
