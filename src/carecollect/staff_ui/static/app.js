// carecollect staff app: charts from data-chart attributes, and the idle sign-out timer.
// Loaded as a file (no inline script: the Content-Security-Policy forbids it).
(function () {
  "use strict";

  function drawCharts(root) {
    if (typeof window.Chart === "undefined") { return; }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) { return; }
      var config = JSON.parse(canvas.dataset.chart);
      config.options = Object.assign({ responsive: true, animation: false,
        plugins: { legend: { display: config.type === "doughnut" } } }, config.options || {});
      new window.Chart(canvas, config);
      canvas.dataset.drawn = "1";
    });
  }

  // HIPAA 164.312(a)(2)(iii) automatic logoff: the server ends an idle session; the page
  // follows so that PHI does not stay on an unattended screen.
  var idleSeconds = parseInt(document.body.dataset.idleSeconds || "0", 10);
  var timer = null;
  function armIdleTimer() {
    if (!idleSeconds) { return; }
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(function () { window.location.reload(); }, (idleSeconds + 1) * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    armIdleTimer();
  });
  document.addEventListener("htmx:afterRequest", armIdleTimer);
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
})();
