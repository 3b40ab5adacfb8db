// Rich-text descriptions with Quill (vendored in static/vendor/quill, see its VERSION).
// The textarea stays the form field: it is hidden, the editor shows its HTML, and on
// submit the editor's semantic HTML is written back.  The server sanitises it anyway
// (app/common/sanitize.py allows exactly what this toolbar produces).  Without
// JavaScript, or if Quill did not load, the plain textarea is used.
(function () {
  "use strict";
  if (!window.Quill) { return; }
  var TOOLBAR = [
    [{header: [2, 3, false]}],
    ["bold", "italic", "underline", "strike"],
    [{list: "ordered"}, {list: "bullet"}],
    ["blockquote", "code-block", "link"],
    ["clean"]
  ];
  var FORMATS = ["header", "bold", "italic", "underline", "strike", "list", "blockquote",
                 "code-block", "link"];
  // Quill's toolbar has no words of its own (icons, and CSS text in English): give every
  // control a name and the pickers and link tooltip their text in the page's language.
  function localise(holder, words) {
    function name(selector, text) {
      holder.querySelectorAll(selector).forEach(function (el) {
        if (text) { el.setAttribute("aria-label", text); el.setAttribute("title", text); }
      });
    }
    ["bold", "italic", "underline", "strike", "blockquote", "code-block", "link", "clean"].forEach(function (k) {
      name("button.ql-" + k, words[k]);
    });
    name('button.ql-list[value="ordered"]', words.ordered);
    name('button.ql-list[value="bullet"]', words.bullet);
    name(".ql-header .ql-picker-label", words.header);
    var headings = {"2": words.h2, "3": words.h3, "": words.normal};
    holder.querySelectorAll(".ql-header .ql-picker-item").forEach(function (item) {
      var text = headings[item.getAttribute("data-value") || ""];
      if (text) { item.setAttribute("data-label", text); item.setAttribute("aria-label", text); }
    });
    var current = holder.querySelector(".ql-header .ql-picker-label");
    if (current && !current.getAttribute("data-value")) { current.setAttribute("data-label", words.normal || ""); }
    var tooltip = holder.querySelector(".ql-tooltip");
    if (tooltip) {
      tooltip.setAttribute("data-visit", words.visit || "");
      tooltip.setAttribute("data-enter", words.enter || "");
      var action = tooltip.querySelector("a.ql-action");
      if (action) { action.setAttribute("data-edit", words.edit || ""); action.setAttribute("data-save", words.save || ""); }
      var remove = tooltip.querySelector("a.ql-remove");
      if (remove) { remove.setAttribute("data-remove", words.remove || ""); }
      var input = tooltip.querySelector("input[type=text]");
      if (input) { input.setAttribute("data-link", "https://"); input.setAttribute("aria-label", words.enter || ""); }
    }
  }

  document.querySelectorAll("textarea[data-rich-text]").forEach(function (area) {
    var holder = document.createElement("div");
    holder.className = "rich-text";
    var box = document.createElement("div");
    holder.appendChild(box);
    area.parentNode.insertBefore(holder, area.nextSibling);
    var quill = new window.Quill(box, {
      theme: "snow",
      modules: {toolbar: TOOLBAR},
      formats: FORMATS
    });
    // Not clipboard.dangerouslyPasteHTML: it selects the start of the editor, which moves
    // the focus into it, so whatever the person was already typing into another field of
    // the page while the scripts loaded would land in the description instead.
    quill.setContents(quill.clipboard.convert({html: area.value || "", text: ""}), "silent");
    area.hidden = true;
    area.setAttribute("aria-hidden", "true");
    localise(holder, JSON.parse(area.dataset.labels || "{}"));
    var editable = box.querySelector(".ql-editor");
    editable.setAttribute("aria-label", area.dataset.label || "");
    editable.setAttribute("role", "textbox");
    editable.setAttribute("aria-multiline", "true");
    editable.id = area.id + "-editor";
    var label = document.querySelector('label[for="' + area.id + '"]');
    if (label) { label.setAttribute("for", editable.id); }
    function sync() {
      // Quill 2.0.3 writes every space of the semantic HTML as &nbsp; (lines would not
      // wrap); plain spaces are what the author typed.
      area.value = quill.getLength() > 1 ? quill.getSemanticHTML().replace(/&nbsp;/g, " ") : "";
    }
    quill.on("text-change", sync);
    area.form.addEventListener("submit", sync);
  });
})();
