(function () {
  var holder = document.getElementById('seglens-figures');
  var specs = holder ? JSON.parse(holder.textContent) : {};
  var els = Array.prototype.slice.call(document.querySelectorAll('[data-fig]'));
  if (typeof window.Plotly === 'undefined') {
    els.forEach(function (el) { el.textContent = 'The charts need JavaScript (plotly.js is inside this file).'; });
    return;
  }
  var config = {displaylogo: false, responsive: true, typesetMath: false,
                modeBarButtonsToRemove: ['select2d', 'lasso2d', 'autoScale2d'],
                toImageButtonOptions: {format: 'png', scale: 2, filename: 'seglens'}};
  function webgl() {
    try { var c = document.createElement('canvas');
          return !!(window.WebGLRenderingContext && (c.getContext('webgl') || c.getContext('experimental-webgl'))); }
    catch (e) { return false; }
  }
  function draw(el) {
    if (el.getAttribute('data-drawn')) { return; }
    el.setAttribute('data-drawn', '1');
    var spec = specs[el.getAttribute('data-fig')];
    if (!spec) { return; }
    if (spec.webgl && webgl()) {
      spec.data.forEach(function (t) { if (t.type === 'scatter') { t.type = 'scattergl'; } });
    }
    Plotly.newPlot(el, spec.data, spec.layout, config);
  }
  window.seglensDrawAll = function () { els.forEach(draw); };
  if ('IntersectionObserver' in window) {
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (en) { if (en.isIntersecting) { io.unobserve(en.target); draw(en.target); } });
    }, {rootMargin: '300px 0px'});
    els.forEach(function (el) { if (el.hasAttribute('data-eager')) { draw(el); } else { io.observe(el); } });
  } else {
    els.forEach(draw);
  }
  window.addEventListener('beforeprint', window.seglensDrawAll);
})();
