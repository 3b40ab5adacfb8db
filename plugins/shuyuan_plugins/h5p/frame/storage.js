/* An opaque-origin frame has no Web Storage: reading window.localStorage throws, and H5P
 * reads it on start.  Give it a per-page memory store instead (nothing persists, which
 * is what the sandbox is for). */
(function () {
  "use strict";
  function memoryStorage() {
    var items = {};
    return {
      getItem: function (key) { return Object.prototype.hasOwnProperty.call(items, key) ? items[key] : null; },
      setItem: function (key, value) { items[key] = String(value); },
      removeItem: function (key) { delete items[key]; },
      clear: function () { items = {}; },
      key: function (index) { return Object.keys(items)[index] || null; },
      get length() { return Object.keys(items).length; }
    };
  }
  ["localStorage", "sessionStorage"].forEach(function (name) {
    try { void window[name]; } catch (error) {
      Object.defineProperty(window, name, {value: memoryStorage(), configurable: true});
    }
  });
})();
