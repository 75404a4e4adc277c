(function () {
  'use strict';
  function key(cell) {
    var hidden = cell.querySelector('[data-v]');
    var raw = hidden ? hidden.getAttribute('data-v') : cell.textContent.trim();
    if (raw === '' || raw === '\u2014') { return null; }
    var plain = raw.replace(/,/g, '').replace(/%$/, '');
    return /^-?\d+(\.\d+)?$/.test(plain) ? parseFloat(plain) : raw.toLowerCase();
  }
  function compare(a, b) {
    if (a === b) { return 0; }
    if (typeof a === 'number' && typeof b === 'number') { return a - b; }
    if (typeof a === 'number') { return -1; }
    if (typeof b === 'number') { return 1; }
    return a < b ? -1 : 1;
  }
  function sort(table, index, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, position) {
      return { row: row, key: key(row.cells[index]), position: position };
    });
    var numeric = keyed.some(function (item) { return typeof item.key === 'number'; });
    var current = th.getAttribute('aria-sort');
    var ascending = current ? current === 'descending' : !numeric;
    keyed.sort(function (a, b) {
      if (a.key === null || b.key === null) {
        return a.key === b.key ? a.position - b.position : (a.key === null ? 1 : -1);
      }
      var order = compare(a.key, b.key);
      return (ascending ? order : -order) || a.position - b.position;
    });
    keyed.forEach(function (item) { body.appendChild(item.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute('aria-sort');
    });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.querySelector('button').addEventListener('click', function () {
        sort(table, index, th);
      });
    });
  });
  document.documentElement.setAttribute('data-js', 'ready');
}());
