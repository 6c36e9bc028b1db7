// Blockyard's own script: what a page offers without it still works; this adds sorting
// a table by a column (th[data-sort]), copy buttons (button[data-copy] copies the text
// of the element whose id it names), and a form's switch (components or URL) showing
// only the chosen alternative's fields. No inline code: the CSP forbids it.
"use strict";
(function () {
  function sortBy(th) {
    const table = th.closest("table");
    const body = table.tBodies[0];
    const index = Array.prototype.indexOf.call(th.parentNode.children, th);
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    const key = (row) => {
      const cell = row.children[index];
      return (cell && (cell.dataset.value || cell.textContent.trim())) || "";
    };
    const numeric = th.dataset.sort === "number";
    const rows = Array.from(body.rows).sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach((row) => body.appendChild(row));
    th.parentNode.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  function copy(button) {
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(() => {
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  }
  function showChosen(root) {
    root.querySelectorAll('input[type=radio][name^="switch:"]:checked').forEach((radio) => {
      const path = radio.name.slice("switch:".length).replace(/\//g, ".");
      document.querySelectorAll(".field[data-switch]").forEach((field) => {
        if (field.dataset.switch === path) field.hidden = field.dataset.option !== radio.value;
      });
    });
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches('input[type=radio][name^="switch:"]')) showChosen(document);
  });
  document.addEventListener("DOMContentLoaded", () => showChosen(document));
  document.addEventListener("htmx:load", () => showChosen(document));
  document.addEventListener("click", (event) => {
    const sortable = event.target.closest("th[data-sort] button");
    if (sortable) { sortBy(sortable.closest("th")); return; }
    const copier = event.target.closest("button[data-copy]");
    if (copier) { event.preventDefault(); copy(copier); }
  });
})();
