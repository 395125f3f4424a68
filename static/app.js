// Progressive enhancement only: every feature here also works without JavaScript
// through plain form submissions handled by the server.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  enhanceInviteRows();
  enhanceSelection();
  showLocalTimes();
});

// "Add another user" adds a row in place instead of a round trip.
function enhanceInviteRows() {
  const container = document.getElementById("invite-rows");
  const button = document.querySelector("[data-add-row]");
  if (!container || !button) return;
  const maxRows = Number(container.dataset.maxRows || "1000");
  button.addEventListener("click", (event) => {
    const rows = container.querySelectorAll("[data-invite-row]");
    if (rows.length >= maxRows) return;
    event.preventDefault();
    const template = rows[rows.length - 1];
    const row = template.cloneNode(true);
    const number = rows.length + 1;
    row.querySelector("legend").textContent = "Person " + number;
    row.querySelectorAll(".field-error, .field-hint").forEach((el) => el.remove());
    row.querySelectorAll(".field").forEach((field) => field.classList.remove("field-invalid"));
    row.querySelectorAll("input").forEach((input) => {
      const base = input.id.replace(/-\d+$/, "");
      const label = row.querySelector('label[for="' + input.id + '"]');
      input.id = base + "-" + number;
      if (label) label.htmlFor = input.id;
      input.value = "";
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    });
    container.appendChild(row);
    row.querySelector("input").focus();
  });
}

// "Select all on this page", and action buttons enabled only with a selection.
function enhanceSelection() {
  const form = document.querySelector("[data-selection-form]");
  if (!form) return;
  const all = form.querySelector("[data-select-all]");
  const boxes = Array.from(form.querySelectorAll("[data-row-select]"));
  const buttons = Array.from(form.querySelectorAll("[data-needs-selection]"));
  const counter = form.querySelector("[data-selection-count]");
  const resend = form.querySelector("[data-resend]");
  const update = () => {
    const selected = boxes.filter((box) => box.checked).length;
    buttons.forEach((button) => { button.disabled = selected === 0; });
    if (all) {
      all.checked = selected > 0 && selected === boxes.length;
      all.indeterminate = selected > 0 && selected < boxes.length;
    }
    if (counter) counter.textContent = selected ? selected + " selected" : "";
    // Users never invited get their first invitation from the same button.
    const picked = boxes.filter((box) => box.checked);
    if (resend && picked.length) {
      const first = picked.every((box) => box.hasAttribute("data-not-invited"));
      resend.textContent = first ? "Send invitation" : "Resend invitation";
    }
  };
  if (all) {
    all.hidden = false;
    all.addEventListener("change", () => {
      boxes.forEach((box) => { box.checked = all.checked; });
      update();
    });
  }
  boxes.forEach((box) => box.addEventListener("change", update));
  update();
}

// Times are rendered in UTC; show them in the viewer's own time zone.
function showLocalTimes() {
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  document.querySelectorAll("time[datetime]").forEach((el) => {
    const date = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(date.getTime())) {
      el.title = el.textContent;
      el.textContent = format.format(date);
    }
  });
  const note = document.querySelector(".total");
  if (note) note.textContent = note.textContent.replace("Times are in UTC.", "Times are in your time zone.");
}
