// The buyer's order form: inline validation and a summary (a file, so the CSP can forbid inline scripts).
(function () {
  var f = document.getElementById('order-form');
  if (!f) return;
  function show(id, msg) { var e = document.getElementById(id + '-err'); if (e) e.textContent = msg || ''; }
  function check() {
    var ok = true, q = f.quantity_kg, pr = f.price_yuan, fl = f.floor_price_yuan;
    var qv = parseFloat(q.value), pv = parseFloat(pr.value), fv = parseFloat(fl.value);
    if (q.value && !(q.checkValidity() && qv > 0)) { show('quantity_kg', q.dataset.err); ok = false; } else show('quantity_kg');
    if (pr.value && !(pr.checkValidity() && pv > 0)) { show('price_yuan', pr.dataset.err); ok = false; } else show('price_yuan');
    if (fl.value && (!fl.checkValidity() || (pv > 0 && fv > pv))) { show('floor_price_yuan', fl.dataset.err); ok = false; } else show('floor_price_yuan');
    var wt = document.getElementById('week_to-err');
    if (f.week_to.value < f.week_from.value) { wt.textContent = wt.dataset.err; ok = false; } else wt.textContent = '';
    var s = document.getElementById('order-summary');
    s.textContent = qv > 0 && pv > 0 ? f.dataset.summary + ': ' + f.grade.options[f.grade.selectedIndex].text + ' · ' +
      qv.toLocaleString() + ' ' + f.dataset.kg + ' · ' + (qv * pv).toLocaleString(undefined, {maximumFractionDigits: 2}) + ' ' + f.dataset.yuan : '';
    return ok && qv > 0 && pv > 0;
  }
  f.addEventListener('input', check);
  f.addEventListener('change', check);
  f.addEventListener('submit', function (ev) { if (!check()) { ev.preventDefault(); } });
})();
