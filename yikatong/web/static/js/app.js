/* yikatong: the little JavaScript the server-rendered pages need. No inline scripts anywhere,
 * so a strict Content-Security-Policy (script-src 'self') can be used. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") || "" : "";
  }

  // Every htmx request carries the CSRF token as a header, so hx-post/hx-delete buttons
  // need no hidden form field.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRF-Token"] = token;
    }
  });

  // htmx does not swap error responses; tell the person something went wrong instead of
  // leaving a button that silently did nothing. Texts come translated from <body data-*>.
  function showFailure(message) {
    var area = document.getElementById("flash-area");
    if (!area || !message) {
      return;
    }
    var alert = document.createElement("div");
    alert.className = "alert alert-danger alert-dismissible fade show";
    alert.setAttribute("role", "alert");
    alert.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "btn-close";
    close.setAttribute("data-bs-dismiss", "alert");
    close.setAttribute("aria-label", document.body.dataset.msgClose || "Close");
    alert.appendChild(close);
    area.appendChild(alert);
    alert.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("htmx:responseError", function () {
    showFailure(document.body.dataset.msgRequestFailed);
  });
  document.addEventListener("htmx:sendError", function () {
    showFailure(document.body.dataset.msgNetworkError);
  });
})();
