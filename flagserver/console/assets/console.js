// Flagwire console: small conveniences on top of pages that work without
// JavaScript. No inline script anywhere (the Content-Security-Policy
// allows only this file).
(function () {
  "use strict";
  // The flag list filters while typing; the Search button (and Enter)
  // searches on the server.
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    var count = document.getElementById("flag-count");
    if (!table) { return; }
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var total = count ? count.textContent.replace(/^\d+ of /, "") : "";
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      var shown = 0;
      rows.forEach(function (row) {
        var hit = !needle || (row.getAttribute("data-search") || "").toLowerCase().indexOf(needle) >= 0;
        row.hidden = !hit;
        if (hit) { shown++; }
      });
      if (count) { count.textContent = shown + " of " + total; }
    });
  });
})();
