// Dropping files on an upload area puts them into its file input.
document.querySelectorAll(".drop").forEach((zone) => {
  const input = zone.querySelector("input[type=file]");
  if (!input) return;
  ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  }));
  ["dragleave", "drop"].forEach((name) => zone.addEventListener(name, () => zone.classList.remove("dragging")));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    input.files = event.dataTransfer.files;
    const count = input.files.length;
    zone.querySelector("span").textContent = count === 1 ? input.files[0].name : `${count} files chosen`;
  });
  input.addEventListener("change", () => {
    const count = input.files.length;
    if (count) zone.querySelector("span").textContent = count === 1 ? input.files[0].name : `${count} files chosen`;
  });
});

// A form that asks before it is sent (the Content-Security-Policy allows no inline handler).
document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});
