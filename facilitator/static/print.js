// A page made to be printed: its Print button.
document.getElementById("print").addEventListener("click", () => window.print());
