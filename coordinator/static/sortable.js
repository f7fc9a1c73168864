// Sortable tables: a button in each column header sorts the rows by that column's data-sort values.
// Pressing the same header again reverses the order; aria-sort tells screen readers the state.
// A <select data-sorts="TABLE-ID"> ("INDEX ascending|descending" values) sorts the same table where
// the headers are not shown (the board's card layout on narrow screens and at 200% zoom).
(function () {
  "use strict";

  function value(row, index, type) {
    var cell = row.cells[index];
    var raw = cell ? (cell.getAttribute("data-sort") || cell.textContent.trim()) : "";
    return type === "number" ? parseFloat(raw) || 0 : raw.toLocaleLowerCase();
  }

  function sortBy(table, index, ascending) {
    var header = table.tHead.rows[0].cells[index];
    var button = header.querySelector("button");
    var type = button ? button.getAttribute("data-sort-type") : "text";
    table.querySelectorAll("thead th").forEach(function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, index, type), y = value(b, index, type);
      var order = type === "number" ? x - y : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    var chooser = document.querySelector('select[data-sorts="' + table.id + '"]');
    var chosen = index + " " + (ascending ? "ascending" : "descending");
    if (chooser && chooser.value !== chosen) {
      var known = Array.prototype.some.call(chooser.options, function (option) { return option.value === chosen; });
      chooser.value = known ? chosen : "";
    }
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (header, index) {
      var button = header.querySelector("button");
      if (button) {
        button.addEventListener("click", function () {
          sortBy(table, index, header.getAttribute("aria-sort") !== "ascending");
        });
      }
    });
  });

  document.querySelectorAll("select[data-sorts]").forEach(function (chooser) {
    var table = document.getElementById(chooser.getAttribute("data-sorts"));
    if (!table) return;
    chooser.addEventListener("change", function () {
      var parts = chooser.value.split(" ");
      if (parts.length === 2) sortBy(table, Number(parts[0]), parts[1] === "ascending");
    });
  });
})();
