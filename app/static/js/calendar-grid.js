/* Teaching calendar editor: the term as a grid of weeks; lessons move between weeks by
 * drag and drop or, for keyboard users, with the arrow keys on a focused lesson
 * (↑/← one week earlier, ↓/→ one week later).  Every move only updates the form's
 * fields (lesson-<id> = week, order-<id> = place in the week); the server saves a new
 * version when the form is submitted.  Without JavaScript each lesson keeps its week
 * selector, so the page works as a plain form. */
(function () {
  "use strict";
  var grid = document.querySelector(".cal-grid[data-editable]");
  if (!grid) { return; }
  grid.classList.add("js-on");
  var live = document.getElementById("cal-live");
  var dirty = document.getElementById("cal-dirty");
  var weeks = Array.prototype.slice.call(grid.querySelectorAll(".cal-week"));
  var dragged = null;

  function listOf(week) { return week.querySelector(".cal-lessons"); }

  function renumber(list) {
    Array.prototype.forEach.call(list.querySelectorAll(".cal-lesson"), function (item, i) {
      var order = item.querySelector("input.order");
      if (order) { order.value = String(i); }
    });
  }

  function announce(item, week) {
    var text = grid.getAttribute("data-moved-text")
      .replace("{lesson}", item.getAttribute("data-title"))
      .replace("{week}", week.getAttribute("data-week"));
    if (live) { live.textContent = text; }
    if (dirty) { dirty.hidden = false; dirty.textContent = grid.getAttribute("data-unsaved-text"); }
  }

  function moveTo(item, week, before) {
    var from = item.parentNode;
    var list = listOf(week);
    if (before && before.parentNode === list) { list.insertBefore(item, before); }
    else { list.appendChild(item); }
    var select = item.querySelector("select.week-select");
    if (select) { select.value = week.getAttribute("data-week"); }
    renumber(from);
    renumber(list);
    announce(item, week);
  }

  // The lesson of ``list`` the dragged one goes before, from the pointer's height.
  function insertionPoint(list, y) {
    var items = Array.prototype.filter.call(list.querySelectorAll(".cal-lesson"), function (el) {
      return el !== dragged;
    });
    for (var i = 0; i < items.length; i++) {
      var box = items[i].getBoundingClientRect();
      if (y < box.top + box.height / 2) { return items[i]; }
    }
    return null;
  }

  grid.addEventListener("dragstart", function (event) {
    var item = event.target.closest && event.target.closest(".cal-lesson");
    if (!item) { return; }
    dragged = item;
    item.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", item.getAttribute("data-node"));
  });
  grid.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
    weeks.forEach(function (w) { w.classList.remove("drop-target"); });
  });
  weeks.forEach(function (week) {
    week.addEventListener("dragover", function (event) {
      if (!dragged) { return; }
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      week.classList.add("drop-target");
    });
    week.addEventListener("dragleave", function (event) {
      if (!week.contains(event.relatedTarget)) { week.classList.remove("drop-target"); }
    });
    week.addEventListener("drop", function (event) {
      event.preventDefault();
      week.classList.remove("drop-target");
      var item = dragged || grid.querySelector('.cal-lesson[data-node="' +
        event.dataTransfer.getData("text/plain") + '"]');
      if (!item) { return; }
      moveTo(item, week, insertionPoint(listOf(week), event.clientY));
    });
  });

  grid.addEventListener("keydown", function (event) {
    var item = event.target;
    if (!item.classList || !item.classList.contains("cal-lesson")) { return; }
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    var step = { ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1 }[event.key];
    if (!step) { return; }
    event.preventDefault();
    var index = weeks.indexOf(item.closest(".cal-week")) + step;
    if (index < 0 || index >= weeks.length) { return; }
    moveTo(item, weeks[index], null);
    item.focus();
  });

  grid.addEventListener("change", function (event) {
    if (event.target.classList.contains("cal-kind")) {
      var week = event.target.closest(".cal-week");
      week.className = week.className.replace(/\bkind-\w+/, "kind-" + event.target.value);
      if (dirty) { dirty.hidden = false; dirty.textContent = grid.getAttribute("data-unsaved-text"); }
    }
  });
})();
