// Drives the adapter's web console in headless Chromium (playwright-core), as
// tests/console.rs asks: argv: BASE_URL LOGIN_LINK SHOTS_DIR. Prints one JSON line
// of measurements at the end; exits non-zero on the first failed expectation.
"use strict";
const path = require("path");
const { chromium } = require(path.join(process.env.HALE_NODE_MODULES, "playwright-core"));

const [base, link, shots] = process.argv.slice(2);
const fail = (why) => { console.error("FAILED: " + why); process.exit(1); };
const expect = (ok, why) => { if (!ok) fail(why); };

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.HALE_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const measured = {};
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // Refusals the test provokes (401, 400) log "Failed to load resource": not errors of the page.
    page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text()); });

    // No session: the console sends the browser to the login page, and its parts refuse.
    await page.goto(base + "/console");
    expect(new URL(page.url()).pathname === "/login", "without a session /console should land on /login, got " + page.url());
    await page.screenshot({ path: path.join(shots, "1-login.png") });
    const part = await page.request.get(base + "/console/part/proposals");
    expect(part.status() === 401, "a part without a session: " + part.status());
    // A wrong token on the login page.
    await page.fill("input[name=token]", "not-the-token");
    await page.click("text=Sign in");
    expect((await page.textContent("#login-error")).includes("not the token"), "a wrong token should be refused");

    // The one-time link signs in, once.
    await page.goto(base + link);
    expect(new URL(page.url()).pathname === "/console", "the login link should open the console, got " + page.url());
    const other = await browser.newContext();
    const again = await (await other.newPage()).goto(base + link);
    expect(again.status() === 403, "a used login link should be refused, got " + again.status());
    await other.close();

    // Tell the test the console is open: api runs hot from now, and the HPA proposes.
    await page.screenshot({ path: path.join(shots, "2-console.png"), fullPage: true });
    console.log("console-open");
    // The proposal appears (the script refreshes every 400 ms): how long after it was made.
    const card = page.locator("article.proposal").first();
    await card.waitFor({ timeout: 30000 });
    const seenAt = Date.now() / 1000;
    const created = Number(await card.getAttribute("data-created"));
    measured.proposal_visible_after_s = seenAt - created;
    const title = await card.locator("h3").textContent();
    expect(/scale/.test(title), "the proposal should be a scale: " + title);
    const effect = await card.locator(".effect").textContent();
    expect(effect.length > 0, "the proposal should show its expected effect");
    await page.screenshot({ path: path.join(shots, "3-proposal.png"), fullPage: true });

    // Accept it: the action is applied (the recent actions show it, with its explanation).
    const id = await card.getAttribute("data-proposal");
    const service = (title.match(/shop\/(\w+)/) || [])[1] || "api";
    const acceptedAt = Date.now();
    await card.locator("button.accept").click();
    const applied = page.locator("#actions tr.action.applied", { hasText: "accepted by console" }).first();
    await applied.waitFor({ timeout: 30000 });
    measured.accept_to_applied_s = (Date.now() - acceptedAt) / 1000;
    const row = await applied.textContent();
    expect(row.includes(service), "the applied row should name " + service + ": " + row);
    expect((await applied.locator(".effect").textContent()).length > 0, "the applied row should explain itself");
    await page.locator("#proposals").locator("text=Nothing waiting").waitFor({ timeout: 30000 });
    await page.screenshot({ path: path.join(shots, "4-applied.png"), fullPage: true });

    // A request in plain words, carried out. Each request waits for its own answer:
    // the answer box is cleared first and the form's buttons are enabled again once
    // the answer is in (an earlier answer arriving late cannot be mistaken for it).
    const send = async (text) => {
      await page.evaluate(() => { const a = document.getElementById("answer"); a.textContent = ""; a.className = ""; });
      await page.fill("#ask-text", text);
      await page.click("#ask button");
      await page.locator("#answer.ok, #answer.err").waitFor({ timeout: 30000 });
      await page.locator("#ask button:not([disabled])").waitFor({ timeout: 30000 });
      return { ok: await page.locator("#answer.ok").count() === 1, text: await page.textContent("#answer") };
    };
    let said = await send("scale db to 3");
    expect(said.ok && said.text.includes("applied"), "scale db to 3: " + said.text);
    await page.locator("#actions tr.action.applied", { hasText: "operator console" }).first().waitFor({ timeout: 30000 });
    // A question, answered from the audit log.
    said = await send("what happened in the last hour?");
    expect(said.ok && said.text.includes("scale"), "what happened: " + said.text);
    // A typo gets the closest command.
    said = await send("scael db to 2");
    expect(!said.ok && said.text.includes("did you mean") && said.text.includes("scale db to 2"), "a typo: " + said.text);
    await page.screenshot({ path: path.join(shots, "5-request.png"), fullPage: true });

    // Feedback on the first action, kept and exported.
    const first = page.locator("#actions tr.action.applied").first();
    await page.evaluate(() => { const a = document.getElementById("answer"); a.textContent = ""; a.className = ""; });
    await first.locator("input[name=comment]").fill("right call, quick");
    await first.locator("button[value=good]").click();
    await page.locator("#answer.ok", { hasText: "feedback kept" }).waitFor({ timeout: 30000 });
    await page.locator("#actions .fb.good", { hasText: "right call" }).first().waitFor({ timeout: 30000 });
    const exported = await page.request.get(base + "/console/feedback.jsonl");
    expect(exported.status() === 200 && (await exported.text()).includes("right call, quick"), "feedback should be exported");

    // Switch the scaler to auto from its row, and back.
    await page.locator("tr[data-agent=scaling] button", { hasText: "Switch to auto" }).click();
    await page.locator("tr[data-agent=scaling] td.mode", { hasText: "auto" }).waitFor({ timeout: 30000 });
    await page.locator("tr[data-agent=scaling] button", { hasText: "Switch to manual" }).click();
    await page.locator("tr[data-agent=scaling] td.mode", { hasText: "manual" }).waitFor({ timeout: 30000 });

    // The health charts and the audit search.
    // (A flat series has no height, so "attached", not "visible".)
    await page.locator("#health svg.chart polyline").first().waitFor({ state: "attached", timeout: 30000 });
    await page.screenshot({ path: path.join(shots, "6-health.png"), fullPage: true });
    await page.goto(base + "/console/audit?q=feedback");
    expect((await page.locator("table.audit tr").count()) >= 2, "the audit search should find the feedback");
    await page.screenshot({ path: path.join(shots, "7-audit.png"), fullPage: true });

    // Signed out, nothing answers again.
    await page.goto(base + "/console");
    await page.click("text=Sign out");
    expect(new URL(page.url()).pathname === "/login", "signing out should land on /login");
    const after = await page.request.get(base + "/console/part/actions");
    expect(after.status() === 401, "after signing out a part should refuse: " + after.status());

    expect(errors.length === 0, "the page logged errors: " + errors.join("; "));
    measured.proposal_id = Number(id);
    console.log(JSON.stringify(measured));
  } catch (e) {
    fail(e.stack || String(e));
  } finally {
    await browser.close();
  }
})();
