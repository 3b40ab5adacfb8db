/* Exercise player: starts (or resumes) an attempt, submits the answers as JSON and shows
 * right/wrong with the explanation under each question.  The answers are never in the
 * page before submission: the server scores them. */
(function () {
  "use strict";
  function csrf() {
    var tag = document.querySelector("script[data-csrf]");
    if (tag) { return tag.dataset.csrf; }
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
      body: JSON.stringify(body || {})
    }).then(function (r) { return r.json().then(function (data) { return {status: r.status, data: data}; }); });
  }
  function collect(form) {
    var answers = {};
    form.querySelectorAll(".exercise-question").forEach(function (fs) {
      var id = fs.dataset.question, type = fs.dataset.type, name = "q-" + id;
      if (type === "multiple_choice") {
        var picked = [];
        fs.querySelectorAll('input[name="' + name + '"]:checked').forEach(function (i) { picked.push(parseInt(i.value, 10)); });
        answers[id] = picked.length ? picked : null;
      } else if (type === "single_choice") {
        var one = fs.querySelector('input[name="' + name + '"]:checked');
        answers[id] = one ? parseInt(one.value, 10) : null;
      } else if (type === "true_false") {
        var tf = fs.querySelector('input[name="' + name + '"]:checked');
        answers[id] = tf ? tf.value === "true" : null;
      } else {
        var text = fs.querySelector('input[name="' + name + '"]').value;
        answers[id] = text.trim() === "" ? null : text;
      }
    });
    return answers;
  }
  function describe(question) {
    var a = question.answer;
    if (question.options && Array.isArray(a)) { return a.map(function (i) { return question.options[i]; }).join("、"); }
    if (question.options && typeof a === "number") { return question.options[a]; }
    if (Array.isArray(a)) { return a[0]; }
    return String(a);
  }
  function show(form, attempt) {
    var byId = {};
    attempt.questions.forEach(function (q) { byId[q.id] = q; });
    form.querySelectorAll(".exercise-question").forEach(function (fs) {
      var q = byId[fs.dataset.question], box = fs.querySelector(".exercise-feedback");
      if (!q) { return; }
      fs.classList.remove("is-right", "is-wrong");
      fs.classList.add(q.correct ? "is-right" : "is-wrong");
      box.textContent = "";
      var mark = document.createElement("strong");
      mark.textContent = (q.correct ? "✓ " : "✗ ") + (q.correct ? form.dataset.right : form.dataset.wrong);
      box.appendChild(mark);
      if (!q.correct) {
        var right = document.createElement("span");
        right.textContent = " " + form.dataset.answerLabel + describe(q);
        box.appendChild(right);
      }
      if (q.explanation) {
        var p = document.createElement("p");
        p.className = "exercise-explanation";
        p.textContent = q.explanation;
        box.appendChild(p);
      }
      fs.querySelectorAll("input").forEach(function (i) { i.disabled = true; });
    });
    form.querySelector(".exercise-score").textContent = form.dataset.scoreLabel + attempt.score.raw + " / " + attempt.score.max;
  }
  function init(form) {
    var attemptId = null, button = form.querySelector(".exercise-submit");
    if (button.disabled) { return; }
    function begin() {
      return post(form.dataset.start).then(function (res) {
        if (res.status >= 400) { throw res; }
        attemptId = res.data.id;
        form.dataset.attempt = attemptId;
      });
    }
    var ready = begin();
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (form.dataset.done) {  // "Try again": a fresh attempt
        form.querySelectorAll(".exercise-question").forEach(function (fs) {
          fs.classList.remove("is-right", "is-wrong");
          fs.querySelector(".exercise-feedback").textContent = "";
          fs.querySelectorAll("input").forEach(function (i) { i.disabled = false; if (i.type === "text") { i.value = ""; } else { i.checked = false; } });
        });
        form.querySelector(".exercise-score").textContent = "";
        delete form.dataset.done;
        button.textContent = form.dataset.submitLabel;
        ready = begin();
        return;
      }
      button.disabled = true;
      ready.then(function () {
        return post(form.dataset.submit.replace("ATTEMPT", attemptId), {answers: collect(form)});
      }).then(function (res) {
        button.disabled = false;
        if (res.status >= 400) {
          form.querySelector(".exercise-score").textContent = (res.data.error && res.data.error.message) || String(res.status);
          if (res.data.error && (res.data.error.code === "attempt_closed" || res.data.error.code === "already_submitted")) { ready = begin(); }
          return;
        }
        show(form, res.data);
        form.dataset.done = "1";
        button.textContent = form.dataset.again;
        document.dispatchEvent(new CustomEvent("shuyuan:exercise-submitted", {detail: res.data}));
      }).catch(function (res) {
        button.disabled = false;
        form.querySelector(".exercise-score").textContent = (res && res.data && res.data.error && res.data.error.message) || "Error";
      });
    });
  }
  document.querySelectorAll("form.exercise-player").forEach(init);
})();
