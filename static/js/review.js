// Review pages: tick many faces — click a card, shift-click for a range, "Select all in
// this group" — then answer them all with one button of the bar (form#review-bulk).
(function () {
  "use strict";
  const form = document.getElementById("review-bulk");
  if (!form) return;
  const count = form.querySelector("[data-selected-count]");
  const boxes = () => Array.from(form.querySelectorAll("input[name=faces]"));
  let last = null;

  function update() {
    const n = boxes().filter((box) => box.checked).length;
    count.textContent = n === 0 ? "Tick faces to answer them together"
      : n === 1 ? "1 face selected" : n + " faces selected";
    form.querySelectorAll("[data-needs-selection]").forEach((b) => { b.disabled = n === 0; });
    boxes().forEach((box) => box.closest("[data-face]").classList.toggle("selected", box.checked));
  }

  function tick(box, checked, range) {
    const all = boxes();
    if (range && last && all.includes(last)) {
      const [from, to] = [all.indexOf(last), all.indexOf(box)].sort((a, b) => a - b);
      all.slice(from, to + 1).forEach((b) => { b.checked = checked; });
    } else {
      box.checked = checked;
    }
    last = box;
    update();
  }

  function selectMany(kind, button) {
    const scope = kind === "group" ? button.closest("[data-group]") : form;
    const inScope = Array.from(scope.querySelectorAll("input[name=faces]"));
    const checked = kind === "none" ? false
      : kind === "group" ? !inScope.every((b) => b.checked) : true;
    inScope.forEach((b) => { b.checked = checked; });
    update();
  }

  form.addEventListener("click", (event) => {
    const target = event.target;
    const many = target.closest("[data-select]");
    if (many) { selectMany(many.dataset.select, many); return; }
    if (target.matches("input[name=faces]")) { tick(target, target.checked, event.shiftKey); return; }
    if (target.closest("button, a, select, input, label")) return;
    const card = target.closest("[data-face]");
    if (!card) return;
    const box = card.querySelector("input[name=faces]");
    tick(box, !box.checked, event.shiftKey);
  });
  // A shift-click on a card selects a range, not the text between two clicks.
  form.addEventListener("mousedown", (event) => {
    if (event.shiftKey && event.target.closest("[data-face]")) event.preventDefault();
  });
  update();
})();
