// An import's page: the result (first on the page) takes the focus, so a screen reader reads it and
// the eye finds it; while the job runs, its progress bar follows the job's JSON until it is done,
// then the page reloads to show the result. Without JS the page refreshes itself (a noscript meta).
(function () {
  "use strict";
  var result = document.getElementById("import-result");
  if (result) {
    result.focus({ preventScroll: true });
    result.scrollIntoView({ block: "start" });
    return;
  }
  var box = document.querySelector("[data-job-status]");
  if (!box) { return; }
  var url = box.getAttribute("data-job-status");
  var bar = document.getElementById("import-progress");
  var words = document.getElementById("import-percent");
  var phase = document.getElementById("import-phase");
  function show(job) {
    bar.value = job.percent;
    bar.textContent = job.percent + "%";
    words.textContent = job.percent + "% done";
    if (phase.textContent !== job.phase) { phase.textContent = job.phase; }
  }
  function poll() {
    window.fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (job) {
        if (job.finished) { window.location.reload(); return; }
        show(job);
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
