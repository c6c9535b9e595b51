// A folder chosen with <input webkitdirectory> is sent file by file, each with its path
// inside the folder (a plain form submission would send the bare file names only).
(function () {
  const form = document.getElementById("folder-form");
  if (!form) return;
  const input = document.getElementById("id_folder");
  const status = document.getElementById("folder-status");
  const max = Number(form.dataset.maxFiles);
  input.addEventListener("change", () => {
    status.textContent = `${input.files.length} files chosen.`;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = Array.from(input.files);
    if (!files.length) { status.textContent = "Choose a folder first."; return; }
    if (files.length > max) { status.textContent = `The folder has ${files.length} files; at most ${max}. Zip it and upload the zip instead.`; return; }
    const data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    for (const file of files) {
      data.append("files", file, file.name);
      data.append("paths", file.webkitRelativePath || file.name);
    }
    status.textContent = `Uploading ${files.length} files…`;
    form.querySelector("button").disabled = true;
    try {
      const response = await fetch(form.action || window.location.href, {method: "POST", body: data});
      if (response.redirected) { window.location = response.url; return; }
      document.open(); document.write(await response.text()); document.close();
    } catch (e) {
      status.textContent = "The upload failed; check the connection and try again.";
      form.querySelector("button").disabled = false;
    }
  });
})();
