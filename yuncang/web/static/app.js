/* yuncang pages: draw the Plotly figures, register the service worker, and keep farm records in an
   outbox (IndexedDB) until the server has them. Each record gets a client-made id when it is saved, so a
   retry (lost answer, page closed and reopened, network back) never stores it twice: the server answers
   a known id with the record it already has. */
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
  var form = document.getElementById("record-form");
  if (!form || !window.indexedDB) return;
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
  function show(n, extra) {
    if (!status) return;
    status.textContent = (n ? words.pending.replace("{n}", n) : words.synced) + (extra ? " · " + extra : "");
    status.className = n ? "err" : "msg";
  }
  function addRow(r) {
    var table = document.getElementById("records");
    if (!table) {
      table = document.createElement("table"); table.id = "records"; table.appendChild(document.createElement("tbody"));
      var empty = document.getElementById("no-records");
      (empty ? empty.parentNode : form.parentNode).insertBefore(table, empty || null);
      if (empty) empty.remove();
    }
    var tr = document.createElement("tr");
    [r.observed_on, words.kinds[r.kind] || r.kind, r.value == null ? "" : String(r.value), r.note || ""]
      .forEach(function (v) { var td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
    table.tBodies[0].insertBefore(tr, table.tBodies[0].firstChild);
  }
  var flushing = false;
  function flush() {
    if (flushing) return Promise.resolve();
    flushing = true;
    return tx("readonly", function (s) { return s.getAll(); }).then(function (items) {
      var chain = Promise.resolve(), left = items.length, note = "";
      items.forEach(function (it) {
        chain = chain.then(function () {
          return fetch("/api/v1/orchards/" + encodeURIComponent(it.orchard_id) + "/records", {
            method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
            body: JSON.stringify(it.body)
          }).then(function (res) {
            if (res.status === 200 || res.status === 201 || res.status === 409 || res.status === 422) {
              if (res.status >= 400) note = words.refused;  // cannot succeed on a retry: drop, say so
              else { addRow(it.body); var saved = document.getElementById("record-saved"); if (saved) saved.hidden = false; }
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
    tx("readwrite", function (s) { return s.put({client_id: id, orchard_id: f.orchard_id.value, body: body,
                                                 saved_at: new Date().toISOString()}); })
      .then(function () { form.reset(); f.observed_on.value = body.observed_on; return flush(); });
  });
  window.addEventListener("online", flush);
  setInterval(function () { if (navigator.onLine !== false) flush(); }, 20000);
  tx("readonly", function (s) { return s.count(); }).then(function (n) { show(n); if (n) flush(); });
})();
