/* Direct upload of one file to storage: presigned PUT or resumable multipart, with fetch.
 * The bytes go from the browser to the URLs the API hands out (S3 / MinIO presigned, or
 * Shuyuan's signed local URLs); the API only starts, lists and completes the upload. */
(function () {
  "use strict";
  var form = document.getElementById("media-upload");
  if (!form) { return; }
  var input = document.getElementById("media-file");
  var bar = document.getElementById("media-progress");
  var status = document.getElementById("media-status");
  var submit = document.getElementById("media-submit");
  var cancel = document.getElementById("media-cancel");
  var api = form.dataset.api;
  var csrf = form.dataset.csrf;
  var HASH_LIMIT = 256 * 1024 * 1024;
  var CONCURRENCY = 3;
  var current = null;

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "";
  }

  function call(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (response) {
      if (response.status === 204) { return {}; }
      return response.json().then(function (data) {
        if (!response.ok) {
          var error = new Error((data.error && data.error.message) || ("HTTP " + response.status));
          error.fatal = true;
          throw error;
        }
        return data;
      });
    });
  }

  function sha256(file) {
    if (!window.crypto || !crypto.subtle || file.size > HASH_LIMIT) { return Promise.resolve(null); }
    say(form.dataset.msgHashing);
    return file.arrayBuffer().then(function (buffer) {
      return crypto.subtle.digest("SHA-256", buffer);
    }).then(function (digest) {
      return Array.prototype.map.call(new Uint8Array(digest), function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
    });
  }

  function resumeKey(file) {
    return "shuyuan-upload:" + form.dataset.resource + ":" + file.name + ":" + file.size + ":" + file.lastModified;
  }

  function put(url, blob) {
    var attempt = 0;
    function once() {
      attempt += 1;
      return fetch(url, {method: "PUT", body: blob}).then(function (response) {
        if (!response.ok) {
          return response.text().then(function (text) {
            var error = new Error("HTTP " + response.status + " " + text.slice(0, 200));
            error.fatal = response.status === 403 || response.status === 413;
            throw error;
          });
        }
        return (response.headers.get("ETag") || "").replace(/"/g, "");
      }).catch(function (error) {
        if (error.fatal || attempt >= 3 || (current && current.cancelled)) { throw error; }
        return new Promise(function (resolve) { setTimeout(resolve, 1000 * attempt); }).then(once);
      });
    }
    return once();
  }

  function uploadParts(file, upload, done) {
    var etags = {};
    var sent = 0;
    done.forEach(function (p) { etags[p.part_number] = p.etag; sent += p.size; });
    var todo = [];
    for (var n = 1; n <= upload.part_count; n++) { if (!(n in etags)) { todo.push(n); } }
    function progress() { bar.value = Math.round(100 * sent / file.size); }
    progress();
    function worker() {
      if (!todo.length || (current && current.cancelled)) { return Promise.resolve(); }
      var number = todo.shift();
      return call("POST", api + "/" + upload.id + "/parts", {part_numbers: [number]}).then(function (data) {
        var start = (number - 1) * upload.part_size;
        var blob = file.slice(start, Math.min(file.size, start + upload.part_size));
        return put(data.part_urls[String(number)], blob).then(function (etag) {
          etags[number] = etag;
          sent += blob.size;
          progress();
          return worker();
        });
      });
    }
    var workers = [];
    for (var i = 0; i < CONCURRENCY; i++) { workers.push(worker()); }
    return Promise.all(workers).then(function () {
      var parts = [];
      for (var n2 = 1; n2 <= upload.part_count; n2++) {
        parts.push(etags[n2] ? {part_number: n2, etag: etags[n2]} : {part_number: n2});
      }
      return parts;
    });
  }

  function finish(upload, parts) {
    say(form.dataset.msgVerifying);
    return call("POST", api + "/" + upload.id + "/complete", {parts: parts}).then(function poll(data) {
      if (data.state === "verifying") {
        return new Promise(function (resolve) { setTimeout(resolve, 1500); }).then(function () {
          return call("GET", api + "/" + upload.id);
        }).then(poll);
      }
      if (data.state === "failed") { var e = new Error(data.error); e.fatal = true; throw e; }
      return data;
    });
  }

  function start(file) {
    var key = resumeKey(file);
    var saved = window.localStorage ? localStorage.getItem(key) : null;
    var resumed = saved ? call("GET", api + "/" + saved).catch(function () { return null; }) : Promise.resolve(null);
    return resumed.then(function (upload) {
      if (upload && upload.state === "pending") {
        say(form.dataset.msgResuming);
        return {upload: upload, done: upload.done_parts || []};
      }
      return sha256(file).then(function (checksum) {
        return call("POST", api, {resource_id: form.dataset.resource, filename: file.name, size: file.size,
                                  checksum: checksum});
      }).then(function (upload) {
        if (window.localStorage) { localStorage.setItem(key, upload.id); }
        return {upload: upload, done: []};
      });
    }).then(function (state) {
      var upload = state.upload;
      current = {upload: upload, cancelled: false};
      say(form.dataset.msgUploading);
      if (upload.mode === "single") {
        var url = upload.url ? Promise.resolve(upload.url) :
          call("POST", api + "/" + upload.id + "/parts", {}).then(function (d) { return d.url; });
        return url.then(function (u) { return put(u, file); }).then(function (etag) {
          bar.value = 100;
          return finish(upload, [{part_number: 1, etag: etag}]);
        });
      }
      return uploadParts(file, upload, state.done).then(function (parts) { return finish(upload, parts); });
    }).then(function (result) {
      if (window.localStorage) { localStorage.removeItem(key); }
      bar.value = 100;
      say(form.dataset.msgDone);
      form.dataset.state = "complete";
      setTimeout(function () { window.location.reload(); }, 800);
      return result;
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = input.files[0];
    if (!file) { return; }
    if (file.size > Number(form.dataset.max)) { say("> " + form.dataset.max + " bytes", true); return; }
    submit.disabled = true;
    cancel.hidden = false;
    form.dataset.state = "uploading";
    start(file).catch(function (error) {
      form.dataset.state = "failed";
      if (error.fatal) {
        if (window.localStorage) { localStorage.removeItem(resumeKey(file)); }
        say(error.message, true);
      } else {
        say(form.dataset.msgLost + " (" + error.message + ")", true);
      }
    }).then(function () { submit.disabled = false; cancel.hidden = true; });
  });

  cancel.addEventListener("click", function () {
    if (!current) { return; }
    current.cancelled = true;
    call("DELETE", api + "/" + current.upload.id).catch(function () { return null; });
    if (input.files[0] && window.localStorage) { localStorage.removeItem(resumeKey(input.files[0])); }
  });
})();
