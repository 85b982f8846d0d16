// Run report behaviour: task table sorting and filters, search-tree node selection.
// Pages work without it (the table is in task order, tree nodes link to #anchors). Run data is
// only ever moved as DOM nodes or read from data-* attributes; nothing here builds HTML.
"use strict";

(function () {
  function readHash() {
    var out = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      if (!part) return;
      var i = part.indexOf("=");
      if (i > 0) out[decodeURIComponent(part.slice(0, i))] = decodeURIComponent(part.slice(i + 1));
    });
    return out;
  }

  function writeHash(state) {
    var parts = [];
    Object.keys(state).forEach(function (k) {
      if (state[k] !== "" && state[k] != null) parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(state[k]));
    });
    history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search);
  }

  // ---- task table --------------------------------------------------------------------------
  function setupTable(table) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var failed = document.getElementById("filter-failed");
    var domain = document.getElementById("filter-domain");
    var search = document.getElementById("filter-search");
    var count = document.getElementById("filter-count");
    var heads = Array.prototype.slice.call(table.tHead.querySelectorAll("th[data-key]"));
    var state = readHash();
    var sortKey = state.sort || "", sortDir = state.dir === "desc" ? -1 : 1;

    function value(row, key, numeric) {
      var v = row.getAttribute("data-" + key) || "";
      return numeric ? parseFloat(v) || 0 : v.toLowerCase();
    }

    function sortBy(key, dir) {
      var head = heads.filter(function (h) { return h.getAttribute("data-key") === key; })[0];
      if (!head) return;
      var numeric = head.getAttribute("data-type") === "num";
      var ordered = rows.slice().sort(function (a, b) {
        var x = value(a, key, numeric), y = value(b, key, numeric);
        if (x < y) return -dir;
        if (x > y) return dir;
        return (parseInt(a.getAttribute("data-order"), 10) - parseInt(b.getAttribute("data-order"), 10));
      });
      ordered.forEach(function (r) { tbody.appendChild(r); });
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      head.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      sortKey = key; sortDir = dir;
    }

    function apply() {
      var onlyFailed = failed && failed.checked;
      var dom = domain ? domain.value : "";
      var text = search ? search.value.trim().toLowerCase() : "";
      var shown = 0;
      rows.forEach(function (r) {
        var ok = (!onlyFailed || r.getAttribute("data-passed") !== "1")
          && (!dom || r.getAttribute("data-domain") === dom)
          && (!text || (r.getAttribute("data-text") || "").indexOf(text) >= 0);
        r.hidden = !ok;
        if (ok) shown += 1;
      });
      if (count) count.textContent = shown + " of " + rows.length + " tasks";
      writeHash({failed: onlyFailed ? "1" : "", domain: dom, q: text, sort: sortKey,
                 dir: sortKey ? (sortDir > 0 ? "asc" : "desc") : ""});
    }

    heads.forEach(function (h) {
      h.tabIndex = 0;
      function go() {
        var key = h.getAttribute("data-key");
        sortBy(key, key === sortKey ? -sortDir : (h.getAttribute("data-type") === "num" ? -1 : 1));
        apply();
      }
      h.addEventListener("click", go);
      h.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
    });
    if (failed) { failed.checked = state.failed === "1"; failed.addEventListener("change", apply); }
    if (domain) {
      if (state.domain && Array.prototype.some.call(domain.options, function (o) { return o.value === state.domain; })) {
        domain.value = state.domain;
      }
      domain.addEventListener("change", apply);
    }
    if (search) { search.value = state.q || ""; search.addEventListener("input", apply); }
    if (sortKey) sortBy(sortKey, sortDir);
    apply();
  }

  // ---- search tree -------------------------------------------------------------------------
  function setupTree(root) {
    var detail = root.querySelector(".tree-detail");
    var nodes = Array.prototype.slice.call(root.querySelectorAll(".tree-svg .node"));
    var current = null;

    function select(id, scroll) {
      var panel = document.getElementById("node-" + id);
      if (!panel) return;
      if (current) current.classList.remove("shown");
      panel.classList.add("shown");
      current = panel;
      nodes.forEach(function (n) { n.classList.toggle("selected", n.getAttribute("data-node") === id); });
      if (scroll && detail) detail.scrollTop = 0;
    }

    nodes.forEach(function (n) {
      var id = n.getAttribute("data-node");
      n.addEventListener("click", function (e) { e.preventDefault(); select(id, true); });
      n.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(id, true); }
      });
    });
    var first = root.getAttribute("data-initial");
    if (first) select(first, false);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("task-table");
    if (table) setupTable(table);
    Array.prototype.forEach.call(document.querySelectorAll(".tree-view"), setupTree);
  });
})();
