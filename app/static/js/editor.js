// Show only the fieldset of the chosen course kind.  Without JavaScript both are shown
// and the server ignores the other kind's fields.
(function () {
  var kind = document.getElementById("kind");
  if (!kind) return;
  function update() {
    document.querySelectorAll(".kind-extended, .kind-curriculum").forEach(function (el) {
      el.hidden = !el.classList.contains("kind-" + kind.value);
    });
  }
  kind.addEventListener("change", update);
  update();
})();
// Ask before irreversible actions (forms marked data-confirm).
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });
});
