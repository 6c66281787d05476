// depot's pages in a real browser (Debian's chromium, driven by playwright-core), against the real
// server on a random port with its own SQLite file loaded with the demo fixtures.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../..");
const bin = process.env.DEPOT_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "debug/depot");
const shots = join(root, "target/screenshots");
const dir = mkdtempSync(join(tmpdir(), "depot-ui-"));
const env = { ...process.env, DATABASE_URL: `sqlite://${dir}/ui.db?mode=rwc`, DEPOT_BIND: "127.0.0.1:0", RUST_LOG: "warn" };
let server, base, browser;

before(async () => {
  mkdirSync(shots, { recursive: true });
  execFileSync(bin, ["load-fixtures", "--dir", join(root, "fixtures")], { env, cwd: root });
  server = spawn(bin, ["serve"], { env, cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  base = await new Promise((ok, fail) => {
    server.stdout.once("data", (d) => ok(String(d).match(/http:\/\/[\d.:]+/)[0]));
    server.once("exit", (c) => fail(new Error(`depot serve exited ${c}`)));
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

const PASSWORD = "depot-demo";

async function signedIn(email, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("dialog", () => assert.fail("a dialog opened: markup from data was executed"));
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/sign-in/, "an anonymous visitor is sent to sign in");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/`);
  return page;
}

// Opens a case from the New-case page by typed serial, as a person would; lands on its page.
async function openCase(page, site, serial, severity, symptom) {
  await page.goto(`${base}/rmas/new?site=${site}`);
  await page.getByLabel("… or serial").fill(serial);
  await page.getByLabel("3. Severity").selectOption(severity);
  await page.getByLabel("Symptom").fill(symptom);
  await page.getByRole("button", { name: "Open RMA" }).click();
  await page.waitForURL(/\/rmas\/RMA-/);
  return page.url();
}

async function move(page, to, fill = async () => {}) {
  const form = page.locator(`#form-${to}`);
  await form.evaluate((d) => (d.open = true));
  await fill(form);
  await form.getByRole("button", { name: /^Move to/ }).click();
  await page.waitForLoadState();
  const badge = page.locator("h1 .badge");
  assert.equal((await badge.textContent()).trim(), to.replaceAll("_", " "), `moved to ${to}: ${await page.locator(".alert").allTextContents()}`);
}

test("each role signs in and gets its navigation", async () => {
  const expected = {
    "fe@vast.example": ["Dashboard", "RMAs", "New case", "Stock", "SLA", "Lifecycle", "API"],
    "cam@vast.example": ["Dashboard", "RMAs", "Receiving", "Stock", "Lifecycle", "API"],
    "dctech@coreweave.example": ["Dashboard", "RMAs", "New case", "SLA", "Lifecycle"],
    "admin@vast.example": ["Dashboard", "RMAs", "New case", "Stock", "SLA", "Lifecycle", "Admin", "API"],
  };
  for (const [email, nav] of Object.entries(expected)) {
    const page = await signedIn(email);
    assert.deepEqual((await page.locator("header nav a").allTextContents()).map((s) => s.trim()), nav, email);
    await page.context().close();
  }
});

test("sessions: cookie flags, a new id at each sign-in, throttled guessing", async () => {
  const a = await signedIn("fe@vast.example");
  const first = (await a.context().cookies()).find((c) => c.name === "depot_session");
  assert.equal(first.httpOnly, true);
  assert.equal(first.sameSite, "Lax");
  await a.goto(`${base}/sign-in`);
  await a.getByLabel("Email").fill("fe@vast.example");
  await a.getByLabel("Password").fill(PASSWORD);
  await a.getByRole("button", { name: "Sign in" }).click();
  await a.waitForURL(`${base}/`);
  const second = (await a.context().cookies()).find((c) => c.name === "depot_session");
  assert.notEqual(first.value, second.value, "the session id is rotated at sign-in");
  await a.context().close();

  const context = await browser.newContext();
  const page = await context.newPage();
  for (let i = 0; i < 6; i++) {
    await page.goto(`${base}/sign-in`);
    await page.getByLabel("Email").fill("sac@vast.example");
    await page.getByLabel("Password").fill("wrong-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForLoadState();
  }
  assert.match(await page.locator(".alert").textContent(), /too many failed sign-ins/);
  await context.close();
});

test("the CoreWeave golden path, through forms only, with the receiving scanner", async () => {
  const fe = await signedIn("fe@vast.example");
  await fe.goto(`${base}/rmas/new`);
  await fe.getByLabel("1. Site").selectOption("cw-ord1");
  await fe.getByRole("button", { name: "Show its nodes" }).click();
  await fe.getByLabel("2. Node by cluster and slot").selectOption("CN-ORD1-0103");
  await fe.getByLabel("3. Severity").selectOption("sev2");
  await fe.getByLabel("Symptom").fill("<script>alert('x')</script> DIMM A1 uncorrectable errors");
  await fe.getByLabel("CS ticket").fill("CS-4711");
  await fe.getByRole("button", { name: "Open RMA" }).click();
  await fe.waitForURL(/\/rmas\/RMA-\d{4}-\d{6}$/);
  const url = fe.url();
  const number = url.split("/").pop();
  assert.match(await fe.locator(".symptom").textContent(), /<script>alert\('x'\)<\/script>/, "markup shows as text");
  await move(fe, "diagnosing");
  // A refused approval explains itself inline and changes nothing.
  const approve = fe.locator("#form-approved");
  await approve.evaluate((d) => (d.open = true));
  await approve.getByLabel("Fault code").fill("DIMM_UE");
  await approve.getByLabel(/^Replacement( \*)?$/).selectOption("fru");
  await approve.getByLabel("FRU part number").fill("DIMM-64G");
  await approve.getByRole("button", { name: /^Move to/ }).click();
  assert.match(await fe.locator("#form-approved .alert").textContent(), /C-node/);
  await move(fe, "approved", async (f) => {
    await f.getByLabel("Fault code").fill("DIMM_UE");
    await f.getByLabel(/^Replacement( \*)?$/).selectOption("whole_unit");
    await f.getByLabel("FRU part number").fill("");
  });
  await fe.goto(`${base}/rmas`);
  assert.match(await fe.locator("table").textContent(), /<script>alert/, "the list shows the symptom's RMA without running it");
  await fe.context().close();

  const cam = await signedIn("cam@vast.example");
  await cam.goto(url);
  // The unit reserved at approval is prefilled, and the picker lists what is on CAM's shelf.
  const reserved = (await cam.locator("dt:text-is('Reserved') + dd a").textContent()).trim();
  assert.equal(await cam.locator("#form-replacement_shipped").getByLabel(/Replacement serial/).inputValue(), reserved);
  const shelf = await cam.locator("#shelf-list option").evaluateAll((os) => os.map((o) => o.value));
  assert.ok(shelf.length >= 2 && shelf[0] === reserved && shelf.every((s) => s.startsWith("CN-CAM-")), shelf.join());
  await move(cam, "replacement_shipped", async (f) => {
    await f.getByLabel("Carrier").selectOption("UPS");
    await f.getByLabel("Tracking number").fill("1Z999AA10123456784");
  });
  assert.ok(await cam.locator("a[href*='ups.com']").count(), "tracking link");

  const dc = await signedIn("dctech@coreweave.example", { width: 390, height: 844 });
  await dc.goto(`${base}/`);
  assert.match(await dc.locator("main").textContent(), new RegExp(number), "waiting on the DC tech");
  await dc.goto(url);
  await move(dc, "replacement_delivered");
  await move(dc, "swapped");
  await move(dc, "return_shipped", async (f) => {
    await f.getByLabel("Carrier").selectOption("FedEx");
    await f.getByLabel("Tracking number").fill("123456789012");
  });
  await dc.context().close();

  // The scanner types the serial and Enter; an unexpected scan says so.
  await cam.goto(`${base}/receiving`);
  await cam.keyboard.type("CN-ORD1-0101\n");
  await cam.waitForLoadState();
  assert.match(await cam.locator("#unexpected").textContent(), /Unexpected/);
  await cam.goto(`${base}/receiving`);
  await cam.keyboard.type("CN-ORD1-0103\n");
  await cam.waitForURL(new RegExp(`/rmas/${number}\\?scanned=CN-ORD1-0103`));
  assert.equal(await cam.locator("#form-received").getByLabel("Scanned serial").inputValue(), "CN-ORD1-0103");
  await move(cam, "received");
  await cam.screenshot({ path: join(shots, "rma-detail.png"), fullPage: true });
  await move(cam, "triage");
  await move(cam, "repair", async (f) => {
    await f.getByLabel(/^Finding( \*)?$/).fill("DIMM A1 failed");
    await f.getByLabel("Finding codes").fill("dimm-ue");
    await f.getByLabel("Technician time (minutes)").fill("35");
  });
  await move(cam, "testing", (f) => f.getByLabel(/Parts consumed/).fill("DIMM-CAM-S001"));
  await move(cam, "returned_to_stock", (f) => f.getByLabel("Test results").fill("burn-in 24h: pass\nmemtest: pass"));
  const record = await cam.locator("#repair").textContent();
  assert.match(record, /35/, "technician time");
  assert.match(record, /DIMM-UE/, "the catalog code");
  assert.match(record, /DIMM-CAM-S001/, "the part consumed");
  await cam.goto(`${base}/units/CN-ORD1-0103`);
  assert.match(await cam.locator("main").textContent(), /refurbished/);
  await cam.goto(`${base}/stock`);
  await cam.screenshot({ path: join(shots, "stock.png"), fullPage: true });
  await cam.goto(`${base}/receiving`);
  await cam.screenshot({ path: join(shots, "receiving.png") });
  await cam.context().close();

  const report = await signedIn("fe@vast.example");
  await report.goto(`${base}/reports/sla?organization=coreweave`);
  assert.match(await report.locator("table").first().textContent(), /first response/);
  await report.goto(`${base}/reports/charts`);
  assert.ok((await report.locator("figure.chart svg").count()) >= 4, "charts drawn");
  await report.screenshot({ path: join(shots, "charts.png"), fullPage: true });
  await report.context().close();

  // More open cases, so that the dashboard has queues to show.
  const fe2 = await signedIn("fe@vast.example");
  for (const [site, serial, severity, symptom] of [
    ["xai-colossus", "DN-COL1-0102", "sev1", "Fan 2 tachometer reads 0 RPM; enclosure over temperature"],
    ["cw-lga1", "CN-LGA1-0204", "sev3", "Intermittent reboots, BMC logs PSU AC loss"],
  ]) {
    await openCase(fe2, site, serial, severity, symptom);
  }
  await move(fe2, "diagnosing");
  await fe2.goto(`${base}/`);
  // This test's sev1 moved on; the demo's own (fixtures/underway.toml) still waits for an answer.
  assert.equal((await fe2.locator(".queue .count").first().textContent()).trim(), "2", "two reported");
  assert.equal(await fe2.locator("#impact-h").count(), 1, "each section once");
  await fe2.screenshot({ path: join(shots, "dashboard.png"), fullPage: true });
  await fe2.context().close();
});

test("a pallet session lists unexpected serials; thresholds and the restock plan on the stock page", async () => {
  const cam = await signedIn("cam@vast.example");
  await cam.goto(`${base}/receiving`);
  await cam.getByLabel("Pallet label or delivery reference").fill("PALLET-0007");
  await cam.getByRole("button", { name: "Start a receiving session" }).click();
  await cam.waitForURL(/\/receiving\/sessions\/[0-9a-f-]+$/);
  // The scanner types a serial and Enter; the page comes back ready for the next box.
  for (const serial of ["CN-ORD1-0101", "ZZ-STRAY-0001"]) {
    await cam.keyboard.type(`${serial}\n`);
    await cam.locator("#scans").getByRole("link", { name: serial }).waitFor();
  }
  assert.equal((await cam.locator("#count-unexpected").textContent()).trim(), "2");
  assert.match(await cam.locator("#scans").textContent(), /ZZ-STRAY-0001[\s\S]*unexpected/);
  await cam.screenshot({ path: join(shots, "pallet.png"), fullPage: true });
  await cam.getByRole("button", { name: "Close the session" }).click();
  await cam.waitForLoadState();
  assert.equal(await cam.locator("#serial").count(), 0, "a closed session takes no scans");

  await cam.goto(`${base}/stock`);
  await cam.getByLabel("Part").selectOption("CN-5000");
  await cam.getByLabel("Minimum (0 removes it)").fill("500");
  await cam.getByRole("button", { name: "Set threshold" }).click();
  await cam.waitForLoadState();
  assert.match(await cam.locator("tr.short").first().textContent(), /CAM[\s\S]*CN-5000[\s\S]*500/);
  assert.match(await cam.locator(".moves").textContent(), /CN-5000 from SAC to CAM/);
  await cam.getByLabel("Minimum (0 removes it)").fill("20000");
  await cam.getByRole("button", { name: "Set threshold" }).click();
  assert.match(await cam.locator(".alert").textContent(), /minimum/);
  await cam.context().close();
});

test("a form posted without its CSRF token is refused", async () => {
  const page = await signedIn("fe@vast.example");
  const status = await page.evaluate(async () => {
    const res = await fetch("/rmas/new", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "site=cw-ord1&serial=CN-ORD1-0110&severity=sev1&symptom=forged" });
    return res.status;
  });
  assert.equal(status, 403);
  await page.goto(`${base}/rmas?q=CN-ORD1-0110`);
  assert.match(await page.locator("tbody").textContent(), /Nothing here/, "nothing was opened");
  await page.context().close();
});

test("an xAI technician opening a CoreWeave RMA gets 404", async () => {
  const fe = await signedIn("fe@vast.example");
  await fe.goto(`${base}/rmas?organization=coreweave`);
  const number = (await fe.locator("tbody a").first().textContent()).trim();
  await fe.context().close();
  const xai = await signedIn("dctech@xai.example");
  const res = await xai.goto(`${base}/rmas/${number}`);
  assert.equal(res.status(), 404);
  assert.match(await xai.locator("h1").textContent(), /Not found/);
  await xai.context().close();
});

test("the lifecycle diagram shows every state of the table", async () => {
  const page = await signedIn("fe@vast.example");
  await page.goto(`${base}/lifecycle`);
  const drawn = await page.locator("svg g.state").evaluateAll((gs) => gs.map((g) => g.dataset.status));
  const table = await page.evaluate(async () => {
    const rows = [...document.querySelectorAll("table tbody tr")].map((tr) => [...tr.cells].map((c) => c.textContent));
    return rows;
  });
  const inTable = new Set(table.flatMap(([from, to]) => [...from.split(", "), to]));
  assert.deepEqual(new Set(drawn), inTable);
  assert.equal(drawn.length, 16);
  await page.screenshot({ path: join(shots, "lifecycle.png"), fullPage: true });
  await page.context().close();
});

test("an admin creates a depot technician, who signs in; disabling ends it", async () => {
  const admin = await signedIn("admin@vast.example");
  await admin.goto(`${base}/admin/users`);
  const form = () => admin.locator("form[action='/admin/users']");
  await form().getByLabel("Email").fill("new.tech@vast.example");
  await form().getByLabel("Name").fill("New Tech");
  await form().getByLabel("Role").selectOption("depot_tech");
  await form().getByLabel("Organization code").fill("vast");
  await form().getByLabel("Depot (depot technicians only)").fill("SAC");
  await form().getByLabel("Password (10+ characters)").fill("short");
  await form().getByRole("button", { name: "Create user" }).click();
  assert.match(await admin.locator(".alert").textContent(), /at least 10 characters/);
  await form().getByLabel("Password (10+ characters)").fill("a-long-password");
  await form().getByRole("button", { name: "Create user" }).click();
  await admin.waitForURL(`${base}/admin/users`);
  assert.match(await admin.locator("table").textContent(), /new.tech@vast.example/);

  const context = await browser.newContext();
  const tech = await context.newPage();
  await tech.goto(`${base}/sign-in`);
  await tech.getByLabel("Email").fill("new.tech@vast.example");
  await tech.getByLabel("Password").fill("a-long-password");
  await tech.getByRole("button", { name: "Sign in" }).click();
  await tech.waitForURL(`${base}/`);
  assert.match(await tech.locator(".who").textContent(), /SAC/);

  const row = admin.locator("tr", { hasText: "new.tech@vast.example" });
  await row.getByRole("button", { name: "Disable" }).click();
  await admin.waitForURL(`${base}/admin/users`);
  await tech.goto(`${base}/`);
  assert.match(tech.url(), /sign-in/, "a disabled user's session ends");

  await admin.goto(`${base}/admin/catalog`);
  const fan = admin.locator("tr", { hasText: "FAN-80MM" });
  await fan.getByLabel("field-replaceable").uncheck();
  await fan.getByRole("button", { name: "Save" }).click();
  await admin.waitForURL(`${base}/admin/catalog`);
  assert.equal(await admin.locator("tr", { hasText: "FAN-80MM" }).getByLabel("field-replaceable").isChecked(), false);
  await admin.getByLabel("Webhook URL of xAI").fill("ftp://nope");
  await admin.locator("tr", { hasText: "xAI" }).first().getByRole("button", { name: "Save" }).click();
  assert.match(await admin.locator(".alert").textContent(), /is not https/);
  await admin.getByLabel("Webhook URL of xAI").fill("https://169.254.169.254/latest/meta-data/");
  await admin.locator("tr", { hasText: "xAI" }).first().getByRole("button", { name: "Save" }).click();
  assert.match(await admin.locator(".alert").textContent(), /private, loopback or link-local/);
  await admin.getByLabel("Webhook URL of xAI").fill("https://chat.example/hooks/xai");
  await admin.locator("tr", { hasText: "xAI" }).first().getByRole("button", { name: "Save" }).click();
  await admin.waitForURL(`${base}/admin/catalog`);
  assert.equal(await admin.getByLabel("Webhook URL of xAI").inputValue(), "https://chat.example/hooks/xai");
  await admin.getByLabel("On-call override of CoreWeave").fill("sac@vast.example");
  await admin.getByLabel("Override hours for CoreWeave").fill("4");
  await admin.locator("form", { has: admin.getByLabel("On-call override of CoreWeave") }).getByRole("button", { name: "Override" }).click();
  await admin.waitForURL(`${base}/admin/catalog`);
  await admin.getByLabel("Time zone").first().fill("Mars/Olympus");
  await admin.getByRole("button", { name: "Save service levels of CoreWeave" }).click();
  assert.match(await admin.locator(".alert").textContent(), /unknown time zone/);
  await admin.goto(`${base}/admin/catalog`);
  await admin.locator("form", { hasText: "Save service levels of CoreWeave" }).getByLabel("sev1 first response (min)").fill("15");
  await admin.getByRole("button", { name: "Save service levels of CoreWeave" }).click();
  await admin.waitForURL(`${base}/admin/catalog`);
  assert.equal(await admin.locator("form", { hasText: "Save service levels of CoreWeave" }).getByLabel("sev1 first response (min)").inputValue(), "15");
  await admin.goto(`${base}/admin/outbox`);
  assert.match(await admin.locator("h1").textContent(), /Outbox/);
  await admin.context().close();
  await context.close();
});

test("diagnosis from the page: checklist, evidence upload, references, on-call", async () => {
  const fe = await signedIn("fe@vast.example");
  await openCase(fe, "cw-ord1", "CN-ORD1-0201", "sev1", "No POST after firmware update");
  assert.equal(await fe.locator(".facts dt", { hasText: "On call" }).count(), 1);
  await fe.getByLabel("Result of BMC sensors read").selectOption("fail");
  await fe.getByLabel("Note for BMC sensors read").fill("CPU0 VRM fault");
  await fe.locator("form", { has: fe.getByLabel("Result of BMC sensors read") }).getByRole("button", { name: "Record" }).click();
  await fe.waitForLoadState();
  assert.match(await fe.locator("#checklist").textContent(), /CPU0 VRM fault/);
  await fe.getByLabel(/Add a file/).setInputFiles({ name: "../../etc/passwd.txt", mimeType: "text/plain", buffer: Buffer.from("SEL dump") });
  await fe.getByRole("button", { name: "Upload" }).click();
  await fe.waitForLoadState();
  assert.match(await fe.locator("#evidence").textContent(), /passwd\.txt/);
  assert.doesNotMatch(await fe.locator("#evidence").textContent(), /\.\.\//);
  await fe.getByLabel("CS ticket").fill("CS-99001");
  await fe.getByRole("button", { name: "Save references" }).click();
  await fe.waitForLoadState();
  await fe.goto(`${base}/rmas?q=CS-99001`);
  assert.match(await fe.locator("tbody").textContent(), /CN-ORD1-0201/);
  await fe.context().close();
});

test("two tabs: a stale submit says who moved the RMA on, to what, and keeps what was typed", async () => {
  const first = await signedIn("fe@vast.example");
  const url = await openCase(first, "cw-lga1", "CN-LGA1-0205", "sev2", "Node hangs under load");
  assert.match(await first.locator(".flash").textContent(), /^Opened RMA-\d{4}-\d{6} for CN-LGA1-0205 at cw-lga1\.$/);
  const second = await first.context().newPage();
  await second.goto(url);
  await move(first, "diagnosing");
  assert.match(await first.locator(".flash").textContent(), /moved to diagnosing\./, "each change is confirmed");
  await first.reload();
  assert.equal(await first.locator(".flash").count(), 0, "once: a reload does not say it again");
  // The second tab still shows the RMA as reported: its cancel form is stale.
  const form = second.locator("#form-cancelled");
  await form.evaluate((d) => (d.open = true));
  await form.getByLabel("Reason").fill("duplicate of the storage-network case");
  await form.getByLabel("Note").fill("typed in the second tab");
  await form.getByRole("button", { name: /^Move to/ }).click();
  await second.waitForLoadState();
  const alert = (await second.locator(".alert").allTextContents()).join(" ");
  assert.match(alert, /moved on while you were editing: fe@vast\.example moved it to diagnosing/, alert);
  assert.match(alert, /typed in the second tab/, "what was typed is kept");
  assert.equal((await second.locator("h1 .badge").textContent()).trim(), "diagnosing", "the page shows it as it is");
  // A stale "Save references" is told the same way, in its own form, with the typed ticket kept.
  await first.reload();
  await first.locator("#ref-cs").fill("CS-1001");
  await first.getByRole("button", { name: "Save references" }).click();
  await first.waitForLoadState();
  assert.match(await first.locator(".flash").textContent(), /References saved/);
  await second.locator("#ref-eng").fill("ENG-2002");
  await second.getByRole("button", { name: "Save references" }).click();
  await second.waitForLoadState();
  const refsAlert = await second.locator("#refs .alert").textContent();
  assert.match(refsAlert, /moved on while you were editing: fe@vast\.example/, refsAlert);
  assert.equal(await second.locator("#ref-eng").inputValue(), "ENG-2002", "what was typed is kept");
  // Reloading the address the form posted to lands on the RMA, not on 405.
  await second.goto(`${url}/transition`);
  assert.equal(second.url(), url);
  await first.context().close();
});

test("the header search: / focuses it, a hostname from an alert finds its RMA, whose sev1 clock counts down in words", async () => {
  const page = await signedIn("fe@vast.example");
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement.id), "global-search", "/ focuses the search");
  await page.keyboard.type("ord1-r09-c01");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/rmas\?q=/);
  const link = page.locator("table a[href^='/rmas/RMA-']").first();
  await link.click();
  await page.waitForURL(/\/rmas\/RMA-/);
  assert.match(await page.locator(".symptom").textContent(), /PSU failure/, "the demo's unanswered sev1");
  const left = (await page.locator(".clocks .countdown").first().textContent()).trim();
  assert.match(left, /^first response: \d+ min left$|^first response: breached/, left);
  assert.equal(await page.locator(".clocks progress.budget").count() >= 1, true, "a progress bar per running clock");
  // Times read in the viewer's zone, with UTC on hover.
  const opened = page.locator(".facts time").first();
  assert.match(await opened.getAttribute("title"), /UTC$/);
  await page.context().close();
});

test("the New-case page offers a node's open case instead of a second one, and takes one source of the serial", async () => {
  const page = await signedIn("dctech@coreweave.example");
  await page.goto(`${base}/rmas/new?site=cw-ord1`);
  await page.getByLabel("2. Node by cluster and slot").selectOption({ index: 1 });
  await page.getByLabel("… or serial").fill("CN-ORD1-0108");
  await page.getByLabel("3. Severity").selectOption("sev2");
  await page.getByLabel("Symptom").fill("Node down");
  await page.getByRole("button", { name: "Open RMA" }).click();
  await page.waitForLoadState();
  assert.match(await page.locator(".alert").textContent(), /you chose node .* and typed serial CN-ORD1-0108: keep one of them/);
  assert.equal(await page.getByLabel("Symptom").inputValue(), "Node down", "what was typed is kept");
  // The demo's sev1 is open on CN-ORD1-0901: the page offers it.
  await page.getByLabel("2. Node by cluster and slot").selectOption("");
  await page.getByLabel("… or serial").fill("cn-ord1-0901");
  await page.getByRole("button", { name: "Open RMA" }).click();
  await page.waitForLoadState();
  const alert = await page.locator(".alert").textContent();
  assert.match(alert, /CN-ORD1-0901 already has an open case, RMA-\d{4}-\d{6} \(reported\)/, alert);
  await page.locator(".alert a").click();
  await page.waitForURL(/\/rmas\/RMA-/);
  assert.match(await page.locator(".symptom").textContent(), /PSU failure/);
  await page.context().close();
});

const PHONE = { width: 390, height: 844 };

// Every element's right edge within the viewport: no sideways scrolling anywhere on the page.
async function widerThanScreen(page) {
  return page.evaluate(() => {
    const limit = document.documentElement.clientWidth + 1;
    const wide = [...document.querySelectorAll("body *")]
      .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > limit)
      .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${[...e.classList].join(".")} ${Math.round(e.getBoundingClientRect().right)} px`);
    return { scrollWidth: document.documentElement.scrollWidth, wide: wide.slice(0, 5) };
  });
}

test("a CoreWeave DC technician on a 390 px phone: their site's case first, its next steps on top as large targets", async () => {
  const page = await signedIn("dctech@coreweave.example", PHONE);
  // What waits on their site comes before the depot's queues.
  const headings = await page.locator("main h2").allTextContents();
  assert.match(headings[0], /^Waiting on your site/, headings.join(" | "));
  assert.match(headings[1], /^Your open RMAs by impact/, headings.join(" | "));
  const row = page.locator("section[aria-labelledby=waiting-h] tbody tr").filter({ hasText: "replacement shipped" }).first();
  await row.locator("a[href^='/rmas/RMA-']").click();
  await page.waitForURL(/\/rmas\/RMA-/);
  assert.deepEqual((await widerThanScreen(page)).wide, [], "nothing wider than the phone");
  // Confirming delivery and the return label are on the first screen, as full-width touch targets.
  const label = page.getByRole("link", { name: "Print the return label (PDF)" });
  const confirm = page.getByRole("button", { name: "Move to replacement delivered" });
  for (const [what, target] of [["the return label", label], ["confirm delivery", confirm]]) {
    const box = await target.boundingBox();
    assert.ok(box.y + box.height <= PHONE.height, `${what} is on the first screen (${box.y} px down)`);
    assert.ok(box.height >= 44 && box.width >= 300, `${what} is a large touch target (${box.width}×${box.height})`);
  }
  await page.screenshot({ path: join(shots, "phone-rma.png") });
  const pdf = await page.request.get(`${base}${await label.getAttribute("href")}`);
  assert.equal(pdf.headers()["content-type"], "application/pdf");
  await confirm.click();
  await page.waitForLoadState();
  assert.equal((await page.locator("h1 .badge").textContent()).trim(), "replacement delivered");
  await page.context().close();
});

test("at 390 px no page of any role is wider than the screen", async () => {
  for (const email of ["dctech@coreweave.example", "fe@vast.example", "cam@vast.example", "admin@vast.example"]) {
    const page = await signedIn(email, PHONE);
    // Every page the navigation reaches, and every kind of page linked from those (one of each).
    const seen = new Set();
    const queue = ["/"];
    while (queue.length) {
      const path = queue.shift();
      const response = await page.goto(`${base}${path}`);
      if (!response.headers()["content-type"]?.includes("text/html")) continue;
      const { scrollWidth, wide } = await widerThanScreen(page);
      assert.deepEqual(wide, [], `${email} on ${path}`);
      assert.ok(scrollWidth <= PHONE.width, `${email} on ${path}: ${scrollWidth} px wide`);
      const links = await page.evaluate(() => [...document.querySelectorAll("a[href^='/']")].map((a) => a.getAttribute("href")));
      for (const link of links) {
        const address = link.split("#")[0];
        const kind = address.replace(/\?.*/, "").replace(/\/[^/]*\d[^/]*$/, "/:id");
        if (!address.startsWith("/api/") && !seen.has(kind)) { seen.add(kind); queue.push(address); }
      }
    }
    assert.ok(seen.size >= 8, `${email} walked ${[...seen].join(" ")}`);
    await page.context().close();
  }
});

test("an expired session: after signing in again the engineer is back on the RMA with the typed note", async () => {
  const page = await signedIn("fe@vast.example");
  const url = await openCase(page, "cw-lga1", "CN-LGA1-0206", "sev3", "Fan noise");
  const form = page.locator("#form-cancelled");
  await form.evaluate((d) => (d.open = true));
  await form.getByLabel("Reason").fill("the customer fixed it");
  await form.getByLabel("Note").fill("typed at 2 a.m. before the session ended");
  // The session ends on the server (as after its lifetime): the browser's cookie is no longer known.
  const context = page.context();
  await context.addCookies([{ name: "depot_session", value: "ended-session", url: base }]);
  await form.getByRole("button", { name: /^Move to/ }).click();
  await page.waitForURL(/\/sign-in/);
  assert.match(await page.locator(".flash").textContent(), /what you typed is kept/);
  await page.getByLabel("Email").fill("fe@vast.example");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(url);
  assert.equal((await page.locator("h1 .badge").textContent()).trim(), "reported", "nothing was changed while signed out");
  const back = page.locator("#form-cancelled");
  assert.equal(await back.evaluate((d) => d.open), true, "its form is open");
  assert.equal(await back.getByLabel("Reason").inputValue(), "the customer fixed it");
  assert.equal(await back.getByLabel("Note").inputValue(), "typed at 2 a.m. before the session ended");
  assert.match(await back.locator(".restored").textContent(), /back: check it and submit/);
  await back.getByRole("button", { name: /^Move to/ }).click();
  await page.waitForLoadState();
  assert.equal((await page.locator("h1 .badge").textContent()).trim(), "cancelled");
  assert.match(await page.locator(".timeline").textContent(), /typed at 2 a\.m\./, "the note is in the history");
  // Once through, the draft is gone: the form is empty on the next visit to a new case.
  await page.goto(`${base}/rmas/new?site=cw-lga1`);
  assert.equal(await page.getByLabel("Symptom").inputValue(), "");
  await context.close();
});

test("the bench by scanner and keyboard alone: each step's focus is where the next keystroke belongs", async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const focused = () => page.evaluate(() => {
    const e = document.activeElement;
    return e.labels?.[0]?.textContent.replace("*", "").trim() || e.textContent.trim();
  });
  // One keystroke or scan, and the page it leads to.
  const press = (key) => Promise.all([page.waitForNavigation(), page.keyboard.press(key)]);
  await page.goto(`${base}/receiving`);
  // Sign-in: the email field has the focus; Tab, Enter.
  await page.locator("#email:focus").waitFor();
  await page.keyboard.type("cam@vast.example");
  await page.keyboard.press("Tab");
  await page.keyboard.type(PASSWORD);
  await press("Enter");
  assert.equal(page.url(), `${base}/receiving`);
  // The scan box has the focus. The demo's fan-tray node (fixtures/underway.toml) waits in triage at CAM.
  await page.keyboard.type("CN-ORD1-0905");
  await press("Enter");
  assert.match(page.url(), /\/rmas\/RMA-\d{4}-\d{6}#next$/);
  assert.equal((await page.locator("h1 .badge").textContent()).trim(), "triage");
  assert.equal(await focused(), "Finding", "the repair form's first field to fill");
  await page.keyboard.type("Fan tray 2 motor seized");
  await page.keyboard.press("Tab");
  assert.equal(await focused(), "Finding codes");
  await page.keyboard.type("fan_rpm");
  await press("Control+Enter");
  assert.equal((await page.locator("h1 .badge").textContent()).trim(), "repair", (await page.locator(".alert").allTextContents()).join());
  assert.equal(await focused(), "Move to testing", "nothing to fill in: Enter moves it on");
  await press("Enter");
  assert.equal((await page.locator("h1 .badge").textContent()).trim(), "testing");
  assert.equal(await focused(), "Test results");
  await page.keyboard.type("burn-in 24h: pass\nfan spin-up: pass");
  await press("Control+Enter");
  assert.equal((await page.locator("h1 .badge").textContent()).trim(), "returned to stock");
  const record = await page.locator("#repair").textContent();
  assert.match(record, /FAN-RPM/, "the catalog's code recorded");
  assert.match(record, /name burn-in 24h, passed yes/, "test results in words, the name without its colon");
  await context.close();
});

test("pages stay current: the dashboard follows a new case by itself; an RMA page being typed in says it changed", async () => {
  const board = await signedIn("fe@vast.example");
  const other = await signedIn("fe@vast.example");
  const url = await openCase(other, "cw-lga1", "CN-LGA1-0207", "sev1", "Node lost all NVMe paths");
  const number = url.split("/").pop();
  // No reload by hand: the dashboard's poll notices and shows it.
  await board.locator(`#impact-h ~ ol a[href='/rmas/${number}']`).waitFor({ timeout: 25000 });
  // On the RMA page, someone is typing when another moves the case on: nothing they typed is lost.
  await board.goto(url);
  const cancel = board.locator("#form-cancelled");
  await cancel.evaluate((d) => (d.open = true));
  await cancel.getByLabel("Reason").fill("opened twice");
  await move(other, "diagnosing");
  await board.locator("#changed").waitFor({ timeout: 25000 });
  assert.equal(await cancel.getByLabel("Reason").inputValue(), "opened twice", "not reloaded under the typist");
  await board.locator("#changed button").click();
  await board.waitForLoadState();
  await board.locator("h1 .badge", { hasText: "diagnosing" }).waitFor();
  assert.equal(await board.locator("#form-cancelled").getByLabel("Reason").inputValue(), "opened twice", "kept across the reload");
  await board.context().close();
  await other.context().close();
});

test("a table sorts by the column whose heading is clicked, then the other way", async () => {
  const page = await signedIn("fe@vast.example");
  await page.goto(`${base}/rmas`);
  const severities = async () => (await page.locator("main tbody tr td:nth-child(3)").allTextContents()).map((s) => s.trim());
  const heading = page.getByRole("button", { name: "Sev", exact: true });
  await heading.click();
  const up = await severities();
  assert.ok(up.length >= 5 && new Set(up).size >= 2, up.join());
  assert.deepEqual(up, [...up].sort(), "ascending");
  assert.equal(await page.locator("th[aria-sort=ascending]").textContent(), "Sev");
  await heading.click();
  const down = await severities();
  assert.deepEqual(down, [...up].sort().reverse(), "descending");
  await page.context().close();
});
