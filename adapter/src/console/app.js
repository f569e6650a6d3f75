// The console's one script: refreshes the sections marked data-part, and posts the
// forms marked data-ajax with the session's CSRF token, showing the answer. Without
// it the page still works: forms post and the page reloads.
"use strict";
const csrf = document.body.dataset.csrf || "";

// Per section: the number of the newest refresh asked for, and whether one is in
// flight. A slow adapter must not get a pile of refreshes, and an older answer that
// arrives late must not overwrite a newer one.
const asked = new Map();
const busy = new Set();

async function refresh(el, force) {
  if (busy.has(el) && !force) return;
  const n = (asked.get(el) || 0) + 1;
  asked.set(el, n);
  busy.add(el);
  let r, html;
  try {
    r = await fetch("/console/part/" + el.dataset.part, { credentials: "same-origin" });
    html = r.ok ? await r.text() : null;
  } finally {
    if (asked.get(el) === n) busy.delete(el);
  }
  if (asked.get(el) !== n) return;
  if (r.status === 401) { location.href = "/login"; return; }
  if (html === null) return;
  if (el.dataset.shown === html) return;
  // Do not pull an input away from someone typing in it.
  const active = document.activeElement;
  if (active && el.contains(active) && active.tagName === "INPUT" && active.value && active.type !== "hidden") return;
  el.innerHTML = html;
  el.dataset.shown = html;
}

function refreshAll() {
  for (const el of document.querySelectorAll("[data-part]")) refresh(el, true).catch(() => {});
}

for (const el of document.querySelectorAll("[data-part]")) {
  const every = Number(el.dataset.every) || 5000;
  setInterval(() => refresh(el).catch(() => {}), every);
}

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.matches("form[data-ajax]")) return;
  event.preventDefault();
  const body = new URLSearchParams(new FormData(form, event.submitter));
  const out = document.getElementById("answer");
  for (const b of form.querySelectorAll("button")) b.disabled = true;
  try {
    const r = await fetch(form.action, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { "X-Hale-CSRF": csrf },
    });
    const v = await r.json().catch(() => ({ error: r.status + " " + r.statusText }));
    let text = v.answer || v.error || v.result || JSON.stringify(v);
    if (v.suggestion) text += "\n" + v.suggestion;
    out.textContent = text;
    out.className = r.ok ? "ok" : "err";
    if (r.ok && form.id === "ask") form.reset();
    if (r.ok && form.classList.contains("feedback")) form.reset();
  } catch (e) {
    out.textContent = "the adapter did not answer: " + e;
    out.className = "err";
  } finally {
    for (const b of form.querySelectorAll("button")) b.disabled = false;
    refreshAll();
  }
});
