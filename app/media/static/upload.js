/* Direct upload of one file to storage: presigned PUT or resumable multipart.
 * The bytes go from the browser to the URLs the API hands out (S3 / MinIO presigned, or
 * Shuyuan's signed local URLs); the API only starts, lists and completes the upload.
 *
 * - drop a file on the zone (or choose one and press Upload);
 * - the bar follows the bytes sent (XMLHttpRequest upload progress, part by part);
 * - resumable: the upload id is kept in localStorage under the file's name, size and
 *   date, and a second try asks the API which parts are stored and sends only the rest;
 * - refused before a byte is sent when the resource cannot take a file (waiting for
 *   review: the page says so; the API's 409 says so if the state changed meanwhile). */
(function () {
  "use strict";
  var form = document.getElementById("media-upload");
  if (!form) { return; }
  var input = document.getElementById("media-file");
  var zone = document.getElementById("media-drop");
  var bar = document.getElementById("media-progress");
  var status = document.getElementById("media-status");
  var submit = document.getElementById("media-submit");
  var cancel = document.getElementById("media-cancel");
  var api = form.dataset.api;
  var csrf = form.dataset.csrf;
  var HASH_LIMIT = 256 * 1024 * 1024;
  var CONCURRENCY = 3;
  var current = null;
  var MESSAGES = {  // the API's refusal codes, in the page's language
    resource_in_review: form.dataset.msgInReview,
    quota_exceeded: form.dataset.msgQuota,
    upload_rejected: form.dataset.msgRejected
  };

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "";
  }

  function refuse(text) {
    form.dataset.state = "refused";
    say(text, true);
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
          var code = data.error && data.error.code;
          var error = new Error(MESSAGES[code] || (data.error && data.error.message) || ("HTTP " + response.status));
          error.fatal = true;
          error.code = code;
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

  /* One PUT with upload progress (fetch has none); retried 3 times unless refused. */
  function put(url, blob, onProgress) {
    var attempt = 0;
    function once() {
      attempt += 1;
      return new Promise(function (resolve, reject) {
        var xhr = new XMLHttpRequest();
        if (current) { current.requests.push(xhr); }
        xhr.open("PUT", url);
        xhr.upload.onprogress = function (event) { onProgress(event.loaded); };
        xhr.onload = function () {
          if (xhr.status >= 200 && xhr.status < 300) {
            onProgress(blob.size);
            resolve((xhr.getResponseHeader("ETag") || "").replace(/"/g, ""));
          } else {
            var error = new Error("HTTP " + xhr.status + " " + (xhr.responseText || "").slice(0, 200));
            error.fatal = xhr.status === 403 || xhr.status === 413;
            reject(error);
          }
        };
        xhr.onerror = xhr.onabort = function () { onProgress(0); reject(new Error("network")); };
        xhr.send(blob);
      }).catch(function (error) {
        if (error.fatal || attempt >= 3 || (current && current.cancelled)) { throw error; }
        return new Promise(function (resolve) { setTimeout(resolve, 1000 * attempt); }).then(once);
      });
    }
    return once();
  }

  function progressOf(file) {
    var done = 0;
    var inFlight = {};
    function show() {
      var sent = done;
      Object.keys(inFlight).forEach(function (k) { sent += inFlight[k]; });
      var percent = Math.min(100, Math.round(100 * sent / file.size));
      bar.value = percent;
      bar.setAttribute("aria-valuenow", String(percent));
      form.dataset.sent = String(sent);
      say(form.dataset.msgUploading + " " + percent + "%");
    }
    return {
      already: function (bytes) { done += bytes; show(); },
      part: function (n) {
        return function (loaded) { inFlight[n] = loaded; show(); };
      },
      finished: function (n, size) { delete inFlight[n]; done += size; show(); }
    };
  }

  function uploadParts(file, upload, stored) {
    var etags = {};
    var meter = progressOf(file);
    stored.forEach(function (p) { etags[p.part_number] = p.etag; meter.already(p.size); });
    var todo = [];
    for (var n = 1; n <= upload.part_count; n++) { if (!(n in etags)) { todo.push(n); } }
    // A failed part stops the others from starting new parts, but the parts on their
    // way are let finish: they are stored, and a resumed upload will not send them again.
    var failure = null;
    function worker() {
      if (failure || !todo.length || (current && current.cancelled)) { return Promise.resolve(); }
      var number = todo.shift();
      return call("POST", api + "/" + upload.id + "/parts", {part_numbers: [number]}).then(function (data) {
        var start = (number - 1) * upload.part_size;
        var blob = file.slice(start, Math.min(file.size, start + upload.part_size));
        return put(data.part_urls[String(number)], blob, meter.part(number)).then(function (etag) {
          etags[number] = etag;
          meter.finished(number, blob.size);
          return worker();
        });
      }).catch(function (error) { failure = failure || error; });
    }
    var workers = [];
    for (var i = 0; i < CONCURRENCY; i++) { workers.push(worker()); }
    return Promise.all(workers).then(function () {
      if (failure) { throw failure; }
      if (current && current.cancelled) { var e = new Error(form.dataset.msgCancelled); e.fatal = true; throw e; }
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
        form.dataset.resumed = String((upload.done_parts || []).length);
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
      current = {upload: upload, cancelled: false, requests: []};
      form.dataset.uploadId = upload.id;
      if (upload.mode === "single") {
        var meter = progressOf(file);
        if (state.done.length) { meter.already(file.size); return finish(upload, [{part_number: 1}]); }
        var url = upload.url ? Promise.resolve(upload.url) :
          call("POST", api + "/" + upload.id + "/parts", {}).then(function (d) { return d.url; });
        return url.then(function (u) { return put(u, file, meter.part(1)); }).then(function (etag) {
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

  function send(file) {
    if (!file) { return; }
    if (form.dataset.refused) { refuse(form.dataset.msgInReview); return; }
    if (file.size > Number(form.dataset.max)) { refuse(form.dataset.msgTooBig); return; }
    submit.disabled = true;
    cancel.hidden = false;
    form.dataset.state = "uploading";
    document.getElementById("media-filename").textContent = file.name;
    start(file).catch(function (error) {
      form.dataset.state = error.code === "resource_in_review" ? "refused" : "failed";
      if (error.fatal) {
        if (window.localStorage) { localStorage.removeItem(resumeKey(file)); }
        say(error.message, true);
      } else {
        say(form.dataset.msgLost, true);
      }
    }).then(function () { submit.disabled = false; cancel.hidden = true; });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send(input.files[0]);
  });
  input.addEventListener("change", function () {
    if (input.files[0]) { document.getElementById("media-filename").textContent = input.files[0].name; }
  });

  if (zone) {
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      var files = event.dataTransfer && event.dataTransfer.files;
      if (files && files.length) { send(files[0]); }
    });
  }

  cancel.addEventListener("click", function () {
    if (!current) { return; }
    current.cancelled = true;
    current.requests.forEach(function (xhr) { try { xhr.abort(); } catch (e) { /* done already */ } });
    call("DELETE", api + "/" + current.upload.id).catch(function () { return null; });
    if (input.files[0] && window.localStorage) { localStorage.removeItem(resumeKey(input.files[0])); }
    say(form.dataset.msgCancelled);
  });
})();
