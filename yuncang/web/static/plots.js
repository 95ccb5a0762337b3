document.querySelectorAll('script[id$="-data"]').forEach(function (s) {
  var f = JSON.parse(s.textContent), id = s.id.slice(0, -5);
  Plotly.newPlot(id, f.data, f.layout, {responsive: true, displaylogo: false}).then(function (gd) {
    // points that name an orchard open its page
    gd.on('plotly_click', function (ev) {
      var p = ev.points && ev.points[0];
      if (p && typeof p.customdata === 'string' && /^[A-Za-z0-9-]+$/.test(p.customdata)) {
        window.location = '/grower?orchard=' + encodeURIComponent(p.customdata);
      }
    });
  });
});
