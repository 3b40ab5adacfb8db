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
    quill.clipboard.dangerouslyPasteHTML(area.value || "");
    area.hidden = true;
    area.setAttribute("aria-hidden", "true");
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
