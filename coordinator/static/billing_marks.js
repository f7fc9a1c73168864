// The week board's authorization marks (over, used up, expiring, a day without one), fetched once the
// board is shown: counting every authorization's units takes longer than the board itself.
(function () {
  "use strict";
  var table = document.getElementById("board");
  if (!table || !table.dataset.marksUrl) { return; }
  fetch(table.dataset.marksUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) { return response.ok ? response.json() : { marks: {} }; })
    .then(function (answer) {
      table.querySelectorAll(".billing-marks[data-client]").forEach(function (holder) {
        (answer.marks[holder.dataset.client] || []).forEach(function (mark) {
          var badge = document.createElement("span");
          badge.className = "badge billing-mark " + mark.kind;
          var icon = document.createElement("span");
          icon.setAttribute("aria-hidden", "true");
          icon.textContent = mark.icon;
          badge.append(icon, " " + mark.words);
          holder.append(badge);
        });
      });
      table.dataset.marksShown = "yes";
    })
    .catch(function () { /* the board stands without its marks */ });
}());
