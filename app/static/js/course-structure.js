// The course editor's sections: a search picker for the resource of a new item, and
// reordering of items by drag and drop or with the keyboard (↑/↓ buttons, Alt+↑/↓ on
// a focused item), each change sent to the course-structure API
// (POST /api/v1/courses/<id>/sections/<i>/items/<j>/move) and announced to screen
// readers.  Without JavaScript the page's forms do the same through the server.
(function () {
  "use strict";
  var root = document.getElementById("sections-list");
  if (!root) { return; }
  var api = root.dataset.api;
  var csrf = root.dataset.csrf;
  var live = document.getElementById("reorder-status");

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, key) { return values[key]; });
  }

  function announce(text) {
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  // --- reordering --------------------------------------------------------------------

  function lists() { return Array.prototype.slice.call(root.querySelectorAll("ol.items")); }
  function itemsOf(list) { return Array.prototype.slice.call(list.querySelectorAll(":scope > li.item")); }
  function sectionTitle(list) {
    var head = list.closest(".section-block").querySelector(".section-head h3");
    return head ? head.textContent.replace(/^\d+\.\s*/, "") : "";
  }

  // Form addresses carry positions: after a move, point them at the new ones.
  function renumber() {
    lists().forEach(function (list, s) {
      list.dataset.section = String(s);
      var empty = list.querySelector(":scope > li.empty");
      var items = itemsOf(list);
      if (empty) { empty.hidden = items.length > 0; }
      items.forEach(function (li, j) {
        li.querySelectorAll("form").forEach(function (form) {
          form.action = form.action.replace(/\/sections\/\d+\/items\/\d+\//, "/sections/" + s + "/items/" + j + "/");
        });
      });
    });
  }

  function move(li, toList, toIndex, focusAfter) {
    var fromList = li.parentNode;
    var from = itemsOf(fromList).indexOf(li);
    var section = Number(fromList.dataset.section);
    var target = Number(toList.dataset.section);
    var count = itemsOf(toList).length - (toList === fromList ? 1 : 0);
    toIndex = Math.max(0, Math.min(toIndex, count));
    if (toList === fromList && toIndex === from) { return Promise.resolve(); }
    root.dataset.busy = "1";
    return fetch(api + "/sections/" + section + "/items/" + from + "/move", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
      body: JSON.stringify({to: toIndex, section: target})
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      var others = itemsOf(toList).filter(function (x) { return x !== li; });
      if (toIndex >= others.length) {
        var empty = toList.querySelector(":scope > li.empty");
        toList.insertBefore(li, empty || null);
      } else {
        toList.insertBefore(li, others[toIndex]);
      }
      renumber();
      if (focusAfter) { focusAfter.focus(); }
      announce(format(root.dataset.msgMoved, {
        title: li.dataset.title, n: toIndex + 1, total: itemsOf(toList).length, section: sectionTitle(toList)
      }));
    }).catch(function () {
      announce(root.dataset.msgFailed);
    }).then(function () { delete root.dataset.busy; });
  }

  root.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.querySelector("button.item-move")) { return; }
    event.preventDefault();
    var li = form.closest("li.item");
    var up = form.querySelector("input[name=direction]").value === "up";
    var index = itemsOf(li.parentNode).indexOf(li);
    move(li, li.parentNode, index + (up ? -1 : 1), form.querySelector("button"));
  });

  root.addEventListener("keydown", function (event) {
    var li = event.target.closest && event.target.closest("li.item");
    if (!li || !event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) { return; }
    event.preventDefault();
    var index = itemsOf(li.parentNode).indexOf(li);
    move(li, li.parentNode, index + (event.key === "ArrowUp" ? -1 : 1), event.target);
  });

  var dragged = null;
  root.addEventListener("dragstart", function (event) {
    var li = event.target.closest && event.target.closest("li.item");
    if (!li) { return; }
    dragged = li;
    li.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", li.dataset.title || "");
  });
  root.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
  });
  root.addEventListener("dragover", function (event) {
    if (dragged && event.target.closest && event.target.closest("ol.items")) { event.preventDefault(); }
  });
  root.addEventListener("drop", function (event) {
    var list = event.target.closest && event.target.closest("ol.items");
    if (!dragged || !list) { return; }
    event.preventDefault();
    var over = event.target.closest("li.item");
    var others = itemsOf(list).filter(function (x) { return x !== dragged; });
    var index = over && over !== dragged ? others.indexOf(over) : others.length;
    if (over && over !== dragged) {
      var box = over.getBoundingClientRect();
      if (event.clientY > box.top + box.height / 2) { index += 1; }
    }
    move(dragged, list, index, null);
  });

  // --- the search picker -------------------------------------------------------------

  root.querySelectorAll(".picker").forEach(function (picker) {
    var input = picker.querySelector(".picker-input");
    var listbox = picker.querySelector(".picker-list");
    var status = picker.querySelector(".picker-status");
    var fallback = picker.querySelector(".picker-fallback");
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = "resource_id";
    var checked = fallback.querySelector("input:checked");
    hidden.value = checked ? checked.value : "";
    fallback.remove();
    picker.appendChild(hidden);
    input.hidden = false;
    // The live search replaces the page's "find" form (kept for browsers without scripts).
    var finder = picker.closest("details") && picker.closest("details").querySelector("form.finder");
    if (finder) { finder.hidden = true; }
    var options = [];
    var active = -1;
    var timer = null;
    var asked = 0;

    function choose(option) {
      hidden.value = option.dataset.id;
      input.value = option.dataset.title;
      close();
      status.textContent = format(picker.dataset.msgChosen, {title: option.dataset.title});
    }
    function close() {
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }
    function highlight(n) {
      options.forEach(function (o, k) { o.setAttribute("aria-selected", k === n ? "true" : "false"); });
      active = n;
      if (n >= 0) {
        input.setAttribute("aria-activedescendant", options[n].id);
        options[n].scrollIntoView({block: "nearest"});
      }
    }
    function show(rows) {
      // A refresh of the list (the search for what was typed can answer after the one
      // made on focus) keeps the option the keyboard was on, so Enter takes that one.
      var kept = active >= 0 && options[active] ? options[active].dataset.id : null;
      listbox.textContent = "";
      options = rows.map(function (row, k) {
        var li = document.createElement("li");
        li.id = listbox.id + "-" + k;
        li.setAttribute("role", "option");
        li.dataset.id = row.id;
        li.dataset.title = row.title;
        var name = document.createElement("span");
        name.textContent = row.title;
        var meta = document.createElement("span");
        meta.className = "meta";
        meta.textContent = " " + row.kind_label + (row.state !== "published" ? " · " + row.state_label : "");
        li.appendChild(name);
        li.appendChild(meta);
        li.addEventListener("mousedown", function (event) { event.preventDefault(); choose(li); });
        listbox.appendChild(li);
        return li;
      });
      listbox.hidden = options.length === 0;
      input.setAttribute("aria-expanded", options.length ? "true" : "false");
      status.textContent = options.length ? format(picker.dataset.msgCount, {n: options.length}) : picker.dataset.msgNone;
      highlight(options.findIndex(function (o) { return o.dataset.id === kept; }));
    }
    function search() {
      var ticket = ++asked;
      listbox.setAttribute("aria-busy", "true");
      var url = picker.dataset.choices + "?limit=20&q=" + encodeURIComponent(input.value.trim());
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (rows) {
          if (ticket === asked) {
            show(rows);
            listbox.setAttribute("aria-busy", "false");
          }
        })
        .catch(function () { return null; });
    }
    input.addEventListener("input", function () {
      hidden.value = "";
      window.clearTimeout(timer);
      listbox.setAttribute("aria-busy", "true");  // until the answer for what was typed
      timer = window.setTimeout(search, 200);
    });
    input.addEventListener("focus", function () { if (!options.length) { search(); } });
    input.addEventListener("blur", function () { window.setTimeout(close, 100); });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (listbox.hidden) { search(); return; }
        highlight(Math.min(active + 1, options.length - 1));
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        highlight(Math.max(active - 1, 0));
      } else if (event.key === "Enter" && active >= 0 && !listbox.hidden) {
        event.preventDefault();
        choose(options[active]);
      } else if (event.key === "Enter" && !hidden.value) {
        // Nothing chosen yet: Enter would send the form without a resource.
        event.preventDefault();
      } else if (event.key === "Escape") {
        close();
      }
    });
  });
})();
