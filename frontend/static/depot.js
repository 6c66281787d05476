// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
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
