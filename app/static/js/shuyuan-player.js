/* Shuyuan player API: the one way players report what a learner does.
 *
 *   Shuyuan.report(resourceId, verb, data)  -> Promise
 *     verb: played | paused | seeked | completed | progressed | experienced | opened | xapi ...
 *     data: {result: {progress: 0..1, score: {...}, duration: "PT12S"}, context: {...},
 *            statement: {...} (xapi only)}
 *   Shuyuan.bindMedia(element, resourceId)  wires an <audio>/<video> element:
 *     played / paused / seeked / completed, and progressed at each quarter.
 *
 * Events go to POST /api/v1/progress with the session cookie and the page's CSRF token
 * (taken from this script tag's data-csrf, or a <meta name="csrf-token">).  A later
 * feature turns them into xAPI statements; nothing here knows about xAPI.
 */
(function () {
  "use strict";
  if (window.Shuyuan && window.Shuyuan.report) { return; }
  var script = document.currentScript;
  var endpoint = (script && script.dataset.endpoint) || "/api/v1/progress";

  function csrfToken() {
    if (script && script.dataset.csrf) { return script.dataset.csrf; }
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function report(resourceId, verb, data) {
    data = data || {};
    var body = {resource_id: String(resourceId), verb: verb};
    if (data.result) { body.result = data.result; }
    if (data.context) { body.context = data.context; }
    if (data.statement) { body.statement = data.statement; }
    return fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      keepalive: true,
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
      body: JSON.stringify(body)
    }).then(function (response) {
      document.dispatchEvent(new CustomEvent("shuyuan:reported", {detail: {verb: verb, status: response.status}}));
      return response;
    }).catch(function () { return null; });
  }

  function bindMedia(element, resourceId) {
    var quarters = {};
    var seeking = false;
    function result(extra) {
      var duration = element.duration || 0;
      var r = {progress: duration ? Math.min(1, element.currentTime / duration) : 0,
               time: Math.round(element.currentTime * 1000) / 1000};
      for (var k in (extra || {})) { r[k] = extra[k]; }
      return {result: r};
    }
    element.addEventListener("play", function () { report(resourceId, "played", result()); });
    element.addEventListener("pause", function () {
      if (!element.ended && !seeking) { report(resourceId, "paused", result()); }
    });
    element.addEventListener("seeking", function () { seeking = true; });
    element.addEventListener("seeked", function () { seeking = false; report(resourceId, "seeked", result()); });
    element.addEventListener("ended", function () { report(resourceId, "completed", result({progress: 1})); });
    element.addEventListener("timeupdate", function () {
      if (!element.duration) { return; }
      var q = Math.floor(4 * element.currentTime / element.duration);
      if (q >= 1 && q <= 3 && !quarters[q]) { quarters[q] = true; report(resourceId, "progressed", result()); }
    });
  }

  window.Shuyuan = {report: report, bindMedia: bindMedia, csrfToken: csrfToken};
  document.addEventListener("DOMContentLoaded", function () {
    var nodes = document.querySelectorAll("[data-shuyuan-media]");
    for (var i = 0; i < nodes.length; i++) { bindMedia(nodes[i], nodes[i].getAttribute("data-shuyuan-media")); }
  });
})();
