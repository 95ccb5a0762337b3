/* yuncang pages: draw the Plotly figures, register the service worker, and keep farm records and
   sample-tree fruit counts in an outbox (IndexedDB) until the server has them. Each submission gets a
   client-made id when it is saved, so a retry (lost answer, page closed and reopened, network back) never
   stores it twice: the server answers a known id with the record it already has. */
(function () {
  "use strict";
  // ------------------------------------------------------------------ figures
  function drawAll() {
    if (!window.Plotly) return;
    document.querySelectorAll('script[id$="-data"]').forEach(function (s) {
      var f = JSON.parse(s.textContent), id = s.id.slice(0, -5);
      Plotly.newPlot(id, f.data, f.layout, {responsive: true, displaylogo: false, displayModeBar: false})
        .then(function (gd) {
          gd.on("plotly_click", function (ev) {  // points that name an orchard open its page
            var p = ev.points && ev.points[0];
            if (p && typeof p.customdata === "string" && /^[A-Za-z0-9-]+$/.test(p.customdata)) {
              window.location = "/grower?orchard=" + encodeURIComponent(p.customdata);
            }
          });
        });
    });
  }
  // this script is deferred, so it runs before DOMContentLoaded, after the deferred Plotly bundle has run
  document.addEventListener("DOMContentLoaded", drawAll);

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").then(function () {
      // the first visit was not yet served through the worker: keep this page for offline use now
      if (!navigator.serviceWorker.controller && window.caches && /^\/(grower|buyer|manager)/.test(location.pathname)) {
        caches.open("yc-pages-v1").then(function (c) { return c.add(location.pathname + location.search); });
      }
    }).catch(function () { /* plain http on a LAN address: no service worker, no offline copy */ });
  }

  // ------------------------------------------------------------------ outbox
  var form = document.getElementById("record-form"), countForm = document.getElementById("count-form");
  if (!form || !window.indexedDB) return;
  var countWords = countForm ? JSON.parse(document.getElementById("count-words").textContent) : {};
  var status = document.getElementById("outbox-status");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var words = JSON.parse(document.getElementById("outbox-words").textContent);

  function db() {
    return new Promise(function (ok, fail) {
      var r = indexedDB.open("yuncang", 1);
      r.onupgradeneeded = function () { r.result.createObjectStore("outbox", {keyPath: "client_id"}); };
      r.onsuccess = function () { ok(r.result); };
      r.onerror = function () { fail(r.error); };
    });
  }
  function tx(mode, fn) {
    return db().then(function (d) {
      return new Promise(function (ok, fail) {
        var t = d.transaction("outbox", mode), out = fn(t.objectStore("outbox"));
        t.oncomplete = function () { ok(out && out.result); };
        t.onerror = function () { fail(t.error); };
      });
    });
  }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
  function show(n, extra) {  // the outbox's state, beside each form that feeds it
    [status, document.getElementById("count-outbox-status")].forEach(function (el) {
      if (!el) return;
      el.textContent = (n ? words.pending.replace("{n}", n) : words.synced) + (extra ? " · " + extra : "");
      el.className = n ? "err" : "msg";
    });
  }
  function prependRow(tableId, emptyId, anchor, cells) {
    var table = document.getElementById(tableId);
    if (!table) {
      table = document.createElement("table"); table.id = tableId; table.appendChild(document.createElement("tbody"));
      var empty = document.getElementById(emptyId);
      (empty ? empty.parentNode : anchor.parentNode).insertBefore(table, empty || null);
      if (empty) empty.remove();
    }
    var tr = document.createElement("tr");
    cells.forEach(function (v) { var td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
    table.tBodies[0].insertBefore(tr, table.tBodies[0].firstChild);
  }
  function addRow(r) {
    prependRow("records", "no-records", form, [r.observed_on, words.kinds[r.kind] || r.kind,
                                               r.value == null ? "" : String(r.value), r.note || ""]);
    var saved = document.getElementById("record-saved"); if (saved) saved.hidden = false;
  }
  function addCountRow(c) {
    var sum = c.trees.reduce(function (a, t) { return a + t.fruit; }, 0);
    var text = countWords.row.replace("{trees}", c.trees.length).replace("{mean}", Math.round(sum / c.trees.length));
    prependRow("counts", "no-counts", countForm, [c.counted_on, text + (c.mean_fruit_g ? " · " + c.mean_fruit_g + " g" : "")]);
    var saved = document.getElementById("count-saved"); if (saved) saved.hidden = false;
  }
  //: what each kind of outbox item is sent to, and what the page shows once the server has it
  var KINDS = {
    record: {path: "records", done: addRow},
    fruit_count: {path: "fruit-counts", done: addCountRow}
  };
  var flushing = false;
  function flush() {
    if (flushing) return Promise.resolve();
    flushing = true;
    return tx("readonly", function (s) { return s.getAll(); }).then(function (items) {
      var chain = Promise.resolve(), left = items.length, note = "";
      items.forEach(function (it) {
        var kind = KINDS[it.kind || "record"] || KINDS.record;  // items saved before kinds existed are records
        chain = chain.then(function () {
          return fetch("/api/v1/orchards/" + encodeURIComponent(it.orchard_id) + "/" + kind.path, {
            method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
            body: JSON.stringify(it.body)
          }).then(function (res) {
            if (res.status === 200 || res.status === 201 || res.status === 409 || res.status === 422) {
              if (res.status >= 400) note = words.refused;  // cannot succeed on a retry: drop, say so
              else kind.done(it.body);
              left -= 1;
              return tx("readwrite", function (s) { return s.delete(it.client_id); });
            }
            throw new Error("HTTP " + res.status);  // signed out, server busy: keep it, try later
          });
        });
      });
      return chain.then(function () { show(left, note); }, function () { show(left, words.offline); });
    }).then(function () { flushing = false; }, function () { flushing = false; });
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = form.elements, id = uuid(), value = f.value.value.trim();
    var body = {client_id: id, observed_on: f.observed_on.value, kind: f.kind.value,
                value: value === "" ? null : Number(value), note: f.note.value};
    tx("readwrite", function (s) { return s.put({client_id: id, kind: "record", orchard_id: f.orchard_id.value,
                                                 body: body, saved_at: new Date().toISOString()}); })
      .then(function () { form.reset(); f.observed_on.value = body.observed_on; return flush(); });
  });
  if (countForm) {
    var rows = countForm.querySelector("#count-trees tbody"), addTree = document.getElementById("count-add-tree");
    addTree.hidden = false;
    addTree.addEventListener("click", function () {
      var n = rows.rows.length + 1, tr = rows.rows[0].cloneNode(true), inputs = tr.querySelectorAll("input");
      inputs[0].value = String(n); inputs[0].setAttribute("aria-label", countWords.tree + " " + n);
      inputs[1].value = ""; inputs[1].setAttribute("aria-label", countWords.fruit + " " + n);
      rows.appendChild(tr);
      inputs[1].focus();
    });
    countForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = countForm.elements, id = uuid(), trees = [], err = document.getElementById("count-error");
      Array.prototype.forEach.call(rows.rows, function (tr, k) {
        var inputs = tr.querySelectorAll("input"), n = inputs[1].value.trim();
        if (n !== "") trees.push({tree_id: inputs[0].value.trim() || String(k + 1), fruit: Number(n)});
      });
      if (!trees.length) {
        if (!err) { err = document.createElement("p"); err.className = "err"; err.id = "count-error";
                    countForm.parentNode.insertBefore(err, countForm); }
        err.textContent = countWords.need;
        return;
      }
      if (err) err.remove();
      var g = f.mean_fruit_g.value.trim();
      var body = {client_id: id, counted_on: f.counted_on.value, trees: trees, mean_fruit_g: g === "" ? null : Number(g)};
      tx("readwrite", function (s) { return s.put({client_id: id, kind: "fruit_count", orchard_id: f.orchard_id.value,
                                                   body: body, saved_at: new Date().toISOString()}); })
        .then(function () {
          Array.prototype.forEach.call(rows.rows, function (tr) { tr.querySelectorAll("input")[1].value = ""; });
          f.mean_fruit_g.value = "";
          return flush();
        });
    });
  }
  window.addEventListener("online", flush);
  setInterval(function () { if (navigator.onLine !== false) flush(); }, 20000);
  tx("readonly", function (s) { return s.count(); }).then(function (n) { show(n); if (n) flush(); });
})();
