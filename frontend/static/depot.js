// Progressive enhancement only: every page works without this file.
// Time left in words: "12 min left", "3 h 5 min left", "breached 7 min ago".
function inWords(seconds) {
  const s = Math.abs(seconds);
  const words = s < 3600 ? `${Math.max(1, Math.round(s / 60))} min`
    : s < 86400 ? `${Math.floor(s / 3600)} h${Math.round((s % 3600) / 60) ? ` ${Math.round((s % 3600) / 60)} min` : ""}`
    : `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
  return seconds >= 0 ? `${words} left` : `breached ${words} ago`;
}

// Every running clock on the page, kept current without a reload (nothing typed is touched).
function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-deadline]")) {
    const deadline = Date.parse(el.dataset.deadline), started = Date.parse(el.dataset.started);
    const left = Math.round((deadline - now) / 1000);
    const name = el.title.split(" due ")[0];
    el.textContent = `${name}: ${inWords(left)}`;
    const share = (now - started) / Math.max(1, deadline - started);
    el.classList.toggle("c-breached", left < 0);
    el.classList.toggle("c-at_risk", left >= 0 && share >= 0.8);
    const bar = el.nextElementSibling;
    if (bar && bar.tagName === "PROGRESS") bar.value = Math.min(1, Math.max(0, share));
  }
}

// Times in the viewer's time zone; the UTC time on hover.
function localTimes() {
  const format = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  for (const el of document.querySelectorAll("time[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (isNaN(at)) continue;
    el.title = el.title || `${at.toISOString().slice(0, 16).replace("T", " ")} UTC`;
    el.textContent = format.format(at);
  }
}

// On a phone a table reads as one card per row: each cell is labelled with its column's heading.
function labelCells() {
  for (const table of document.querySelectorAll("table")) {
    const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    if (!heads.length) continue;
    table.classList.add("cards");
    for (const row of table.querySelectorAll("tbody tr")) {
      [...row.children].forEach((cell, i) => { if (heads[i]) cell.dataset.label = heads[i]; });
    }
  }
}

// What someone typed survives a session that ended under them: each submitted form is kept in this
// tab's sessionStorage until the next page either confirms a change (a flash message) or shows the
// form again, which then gets the typed values back. Kept per signed-in person, for 12 hours.
const DRAFTS = "depot-drafts";
const DRAFT_LIFETIME_MS = 12 * 3600 * 1000;
const whoAmI = () => document.querySelector(".who [title]")?.title;
const formKey = (form) => `${form.getAttribute("action")}#${form.querySelector("input[type=hidden][name=to]")?.value ?? ""}`;
const typedFields = (form) => [...form.elements].filter((e) => e.name && e.name !== "csrf"
  && !["hidden", "password", "file", "submit", "button"].includes(e.type));
const readDrafts = () => { try { return JSON.parse(sessionStorage.getItem(DRAFTS) ?? "{}"); } catch { return {}; } };

function keepDraft(form) {
  const who = whoAmI();
  if (!who || form.method !== "post") return;
  const values = Object.fromEntries(typedFields(form).map((f) => [f.name, f.type === "checkbox" ? f.checked : f.value]));
  if (!Object.values(values).some((v) => v !== "" && v !== false)) return;
  sessionStorage.setItem(DRAFTS, JSON.stringify({ ...readDrafts(), [formKey(form)]: { who, at: Date.now(), values } }));
}

function restoreDrafts() {
  const drafts = readDrafts(), who = whoAmI();
  if (!Object.keys(drafts).length) return;
  if (!who) {
    // The sign-in page after a session ended: say that nothing typed is lost.
    const form = document.querySelector("form[action='/sign-in']");
    if (form) form.insertAdjacentHTML("beforebegin", '<p class="flash" role="status">Your session ended. Sign in again: what you typed is kept and will be back in its form.</p>');
    return;
  }
  sessionStorage.removeItem(DRAFTS);
  if (document.querySelector(".flash")) return; // the change went through
  for (const form of document.querySelectorAll("form[method=post]")) {
    const draft = drafts[formKey(form)];
    if (!draft || draft.who !== who || Date.now() - draft.at > DRAFT_LIFETIME_MS) continue;
    for (const field of typedFields(form)) {
      if (!(field.name in draft.values)) continue;
      if (field.type === "checkbox") field.checked = draft.values[field.name];
      else field.value = draft.values[field.name];
    }
    const details = form.closest("details");
    if (details) details.open = true;
    if (document.referrer.includes("/sign-in")) {
      form.insertAdjacentHTML("afterbegin", '<p class="flash restored" role="status">What you typed before signing in again is back: check it and submit.</p>');
      typedFields(form)[0]?.focus();
    }
  }
}

// A page that shows live work (the dashboard, an RMA) polls a small stamp and, when what it shows
// has changed, reloads itself — unless someone is typing in one of its forms: then it says so and
// leaves the reload to them.
const LIVE_EVERY_MS = 10000;
function edited(form) {
  return typedFields(form).some((f) => f.tagName === "SELECT"
    ? [...f.options].some((o) => o.selected !== o.defaultSelected)
    : f.type === "checkbox" ? f.checked !== f.defaultChecked : f.value !== f.defaultValue);
}
function stayCurrent() {
  const live = document.querySelector("[data-live]");
  if (!live) return;
  let stamp = live.dataset.stamp;
  setInterval(async () => {
    if (document.hidden) return;
    let answer;
    try {
      answer = await fetch(live.dataset.live, { headers: { accept: "application/json" }, redirect: "manual" });
    } catch { return; }
    if (!answer.ok) return; // signed out or gone: the next click says so
    const now = (await answer.json()).stamp;
    if (now === stamp) return;
    stamp = now;
    if (![...document.forms].some(edited)) return location.reload();
    if (!document.getElementById("changed")) {
      live.insertAdjacentHTML("afterend", '<p class="flash" id="changed" role="status">This has changed since the page opened. <button type="button" class="secondary">Show it now</button> (what you typed here is kept)</p>');
      document.querySelector("#changed button").addEventListener("click", () => {
        document.querySelectorAll("form[method=post]").forEach((f) => edited(f) && keepDraft(f));
        location.reload();
      });
    }
  }, LIVE_EVERY_MS);
}

// Every table of two rows or more sorts by a click on a column's heading (times by their instant,
// numbers as numbers), ascending then descending.
function sortableColumns() {
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  for (const table of document.querySelectorAll("table")) {
    const body = table.tBodies[0];
    if (!body || body.rows.length < 2) continue;
    const heads = [...table.querySelectorAll("thead th")];
    heads.forEach((th, column) => {
      const name = th.textContent.trim();
      if (!name) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = name;
      th.replaceChildren(button);
      button.addEventListener("click", () => {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const key = (row) => {
          const cell = row.cells[column];
          return cell?.querySelector("time[datetime]")?.getAttribute("datetime") ?? cell?.textContent.trim() ?? "";
        };
        const rows = [...body.rows].sort((a, b) => collator.compare(key(a), key(b)) * (ascending ? 1 : -1));
        body.append(...rows);
      });
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  stayCurrent();
  restoreDrafts();
  document.addEventListener("submit", (e) => keepDraft(e.target));
  labelCells();
  sortableColumns();
  localTimes();
  tick();
  setInterval(tick, 15000);
  // "/" goes to the search box from anywhere but a field being typed in.
  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest("input, textarea, select, [contenteditable]");
    const search = document.getElementById("global-search");
    if (e.key === "/" && !typing && search && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      search.focus();
    }
  });
  // Ctrl+Enter (⌘+Enter) sends the form being typed in, from a multi-line field too.
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.form) {
      e.preventDefault();
      e.target.form.requestSubmit();
    }
  });
  // A barcode scanner types fast and ends with Enter; keep the scan box focused and ready for the next one.
  const scan = document.querySelector("[data-scanner]");
  if (scan) { scan.focus(); scan.select(); }
});
// After the load: the browser's own scroll to the address's #fragment would take the focus back.
window.addEventListener("load", focusTheNextStep);

// At the bench the next keystroke belongs to the next step: after a scan (#form-received, #next)
// or a step just made, focus goes to the first field still to fill in of the step on offer, or to
// its button when nothing is required, so that Enter moves the RMA on. Not on touch screens, where
// focusing a field would open the keyboard over the page.
function focusTheNextStep() {
  const asked = location.hash.startsWith("#form-") || location.hash === "#next";
  const justMoved = document.querySelector(".flash") && matchMedia("(pointer: fine)").matches;
  if (!asked && !justMoved) return;
  const details = location.hash.startsWith("#form-")
    ? document.querySelector(location.hash)
    : document.querySelector("#next details.transition");
  if (!details) return;
  details.open = true;
  const fields = [...details.querySelectorAll("input:not([type=hidden]), select, textarea")];
  const target = fields.find((f) => f.required && !f.value) ?? (location.hash.startsWith("#form-") ? fields[0] : null)
    ?? details.querySelector("button[type=submit]");
  target?.focus();
}
