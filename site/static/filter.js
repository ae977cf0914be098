// Filters the index's problem tables by tag and difficulty, in the browser (no server needed).
// The choice lives in the URL hash (#tag=X&difficulty=Y), so tag links on problem pages land filtered.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  if (!form) return;
  var tag = document.getElementById("tag-filter");
  var difficulty = document.getElementById("difficulty-filter");
  var status = document.getElementById("filter-status");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-tags]"));
  var sets = document.querySelectorAll("section.problem-set");

  function matches(row) {
    var tags = row.getAttribute("data-tags").split("|");
    return (!tag.value || tags.indexOf(tag.value) >= 0) &&
           (!difficulty.value || row.getAttribute("data-difficulty") === difficulty.value);
  }

  function apply() {
    var shown = 0;
    rows.forEach(function (row) {
      row.hidden = !matches(row);
      if (!row.hidden) shown++;
    });
    sets.forEach(function (set) { set.hidden = !set.querySelector("tr[data-tags]:not([hidden])"); });
    status.textContent = shown + " of " + rows.length + " problems shown";
    // encodeURIComponent, not URLSearchParams.toString(): a space must read %20, as in the tag links
    // the pages carry, not "+"; readHash accepts both.
    var parts = [];
    if (tag.value) parts.push("tag=" + encodeURIComponent(tag.value));
    if (difficulty.value) parts.push("difficulty=" + encodeURIComponent(difficulty.value));
    var hash = parts.join("&");
    history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
  }

  function readHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    tag.value = params.get("tag") || "";          // an unknown value selects nothing, i.e. ""
    difficulty.value = params.get("difficulty") || "";
    if (tag.selectedIndex < 0) tag.value = "";
    if (difficulty.selectedIndex < 0) difficulty.value = "";
  }

  form.hidden = false;  // without scripts the tables simply list everything
  form.addEventListener("change", apply);
  // The reset event fires before the form clears, so clear it here and apply at once: a deferred
  // apply would leave the old filter showing for a moment after the click.
  form.addEventListener("reset", function (event) {
    event.preventDefault();
    tag.value = "";
    difficulty.value = "";
    apply();
  });
  window.addEventListener("hashchange", function () { readHash(); apply(); });
  readHash();
  apply();
})();
