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

document.addEventListener("DOMContentLoaded", () => {
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
  // A barcode scanner types fast and ends with Enter; keep the scan box focused and ready for the next one.
  const scan = document.querySelector("[data-scanner]");
  if (scan) { scan.focus(); scan.select(); }
  // Open and focus the form a link points at (e.g. #form-received after a scan).
  if (location.hash.startsWith("#form-")) {
    const details = document.querySelector(location.hash);
    if (details) {
      details.open = true;
      const first = details.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
    }
  }
});
