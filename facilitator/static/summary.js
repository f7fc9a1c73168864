// The session summary: print, and confirm before a note is signed (it is locked after).
document.getElementById("print").addEventListener("click", () => window.print());
for (const button of document.querySelectorAll("button[data-confirm]")) {
  button.addEventListener("click", (event) => {
    if (!window.confirm(button.dataset.confirm)) { event.preventDefault(); }
  });
}
// What prints is the note as it stands in the box, saved or not.
const draft = document.getElementById("note_text");
if (draft) {
  draft.addEventListener("input", () => { document.getElementById("note-print").textContent = draft.value; });
}
