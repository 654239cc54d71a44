// carecollect insights pages: filters apply on change; report cards refresh themselves every
// minute (htmx polling, fragments drawn by app.js); charts of a swapped-out card are
// destroyed first. Loaded as a file: the Content-Security-Policy forbids inline script.
(function () {
  "use strict";

  var form = null;

  function onFilterChange(event) {
    var target = event.target;
    if (!form || !target || !target.name) { return; }
    var custom = form.querySelector("select[name=period]");
    // Typing a date switches the period to "custom" so the dates are used.
    if ((target.name === "start" || target.name === "end") && custom) { custom.value = "custom"; }
    if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.submit(); }
  }

  // HIPAA 164.312(a)(2)(iii) automatic logoff. Background refreshes are requests too, so
  // they keep the server-side session alive; the page therefore counts idleness from the
  // person's own input and, once idle for the organization's timeout, stops refreshing
  // and signs out (the server-side idle timeout still applies to a closed browser).
  var idleSeconds = parseInt(document.body.dataset.idleSeconds || "0", 10);
  var lastInput = Date.now();
  var signedOut = false;

  function noteInput() { lastInput = Date.now(); }

  function idle() { return idleSeconds > 0 && Date.now() - lastInput >= idleSeconds * 1000; }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }
    catch (e) { return ""; }
  }

  function signOutIfIdle() {
    if (signedOut || !idle()) { return; }
    signedOut = true;
    var done = function () { window.location.assign("/app/login?m=expired"); };
    window.fetch("/app/logout", {
      method: "POST", credentials: "same-origin", redirect: "manual",
      headers: { "X-CSRF-Token": csrfToken() }
    }).then(done, done);
  }

  document.addEventListener("DOMContentLoaded", function () {
    form = document.getElementById("insights-filters");
    if (form) { form.addEventListener("change", onFilterChange); }
    ["pointerdown", "keydown", "wheel", "touchstart", "scroll"].forEach(function (name) {
      window.addEventListener(name, noteInput, { passive: true });
    });
    if (idleSeconds > 0) { window.setInterval(signOutIfIdle, 1000); }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    // A refresh while the person is away would extend their session: skip it.
    var source = event.detail && event.detail.elt;
    if (source && source.classList && source.classList.contains("insight-report") && idle()) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || typeof window.Chart === "undefined") { return; }
    target.querySelectorAll("canvas").forEach(function (canvas) {
      var chart = window.Chart.getChart(canvas);
      if (chart) { chart.destroy(); }
    });
  });
})();
