// The analytics page in a real browser (issue 20): a site is deployed through the API,
// requests from a few visitors (addresses through X-Real-IP, as the proxies send them)
// are sent to it, and once the app has flushed them the page shows the totals, two
// server-drawn SVG charts and the top lists, with no script. Screenshots go to
// $ARTIFACTS. Started by scripts/browser-test (BASE_URL, ADMIN_PASSWORD, ADMIN_TOKEN).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { request } from "node:http";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = process.env.BASE_URL ?? "http://localhost:3000";
const PASSWORD = process.env.ADMIN_PASSWORD ?? "";
const TOKEN = process.env.ADMIN_TOKEN ?? "";
const ARTIFACTS = process.env.ARTIFACTS ?? join(tmpdir(), "browser-artifacts");
const PORT = Number(new URL(BASE_URL).port);
const SITE = "analytics-demo";

let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
});

after(async () => {
  await browser?.close();
});

async function api(method, path, body, type = "application/json") {
  const response = await fetch(`${BASE_URL}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": type },
    body: body === undefined ? undefined : type === "application/json" ? JSON.stringify(body) : body,
  });
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${await response.clone().text()}`);
  return response.status === 204 ? null : response.json();
}

/** Deploys `files` ({path: text}) with the digest protocol and publishes it. */
async function deploy(files) {
  const sha = (text) => createHash("sha256").update(text).digest("hex");
  const manifest = Object.fromEntries(Object.entries(files).map(([p, t]) => [p, sha(t)]));
  const created = await api("POST", `/sites/${SITE}/deploys`, { files: manifest });
  for (const [, text] of Object.entries(files)) {
    if (created.required.includes(sha(text))) {
      await api("PUT", `/deploys/${created.id}/files/${sha(text)}`, text, "application/octet-stream");
    }
  }
  await api("POST", `/deploys/${created.id}/publish`);
}

/** A GET on the site as one visitor; resolves to the status. */
function visit(path, visitor, referer) {
  const headers = {
    host: `${SITE}.localhost`,
    "x-real-ip": `10.0.0.${visitor}`,
    "user-agent": `demo-browser/${visitor}`,
  };
  if (referer) headers.referer = referer;
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: PORT, path, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
    req.end();
  });
}

test("the analytics page charts what the site served", async () => {
  await api("POST", "/sites", { name: SITE });
  await deploy({
    "/index.html": "<!doctype html><title>Demo</title><h1>Home</h1>",
    "/docs.html": "<!doctype html><title>Docs</title><h1>Docs</h1>",
    "/pricing.html": "<!doctype html><title>Pricing</title><h1>Pricing</h1>",
  });
  const sources = ["https://news.example.com/", "https://search.example/?q=demo", null];
  let sent = 0;
  for (let visitor = 1; visitor <= 24; visitor++) {
    assert.equal(await visit("/", visitor, sources[visitor % 3]), 200);
    sent++;
    if (visitor % 2 === 0) { assert.equal(await visit("/docs", visitor, null), 200); sent++; }
    if (visitor % 3 === 0) { assert.equal(await visit("/pricing", visitor, sources[0]), 200); sent++; }
    if (visitor % 4 === 0) { assert.equal(await visit("/old-page", visitor, null), 404); sent++; }
  }
  // The app writes its figures every HOSTING_ANALYTICS_FLUSH_INTERVAL (5 s by default).
  let figures;
  for (let i = 0; i < 100; i++) {
    figures = await api("GET", `/sites/${SITE}/analytics`);
    if (figures.totals.requests >= sent) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(figures.totals.requests, sent);

  const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
  let scripts = 0;
  page.on("request", (r) => { if (r.resourceType() === "script") scripts++; });
  await page.goto(`${BASE_URL}/login`);
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE_URL}/sites`);
  await page.goto(`${BASE_URL}/sites/${SITE}`);
  // The site page has the browser-deploy script; the analytics pages need none.
  scripts = 0;
  await page.getByRole("link", { name: "Analytics", exact: true }).click();
  await page.getByRole("link", { name: "Last hour" }).click();
  await page.waitForURL(/range=1h/);

  await assert.doesNotReject(page.getByRole("heading", { name: `Analytics: ${SITE}` }).waitFor());
  assert.equal(await page.locator("#total-requests").textContent(), String(sent));
  for (const chart of ["#traffic-chart svg", "#bandwidth-chart svg"]) {
    const box = await page.locator(chart).first().boundingBox();
    assert.ok(box && box.width > 400 && box.height > 100, `${chart} is drawn: ${JSON.stringify(box)}`);
  }
  assert.ok((await page.locator("#traffic-chart rect[fill]").count()) >= 1, "bars are drawn");
  assert.match(await page.locator("#top-pages").textContent(), /\/docs/);
  assert.match(await page.locator("#top-referrers").textContent(), /news\.example\.com/);
  assert.match(await page.locator("#top-not-found").textContent(), /\/old-page/);
  assert.equal(scripts, 0, "the page loads no script");
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-analytics.png"), fullPage: true });

  const phone = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  await phone.context().addCookies(await page.context().cookies());
  await phone.goto(`${BASE_URL}/sites/${SITE}/analytics?range=1h`);
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no sideways scrolling on a phone (${width}px)`);
  await phone.screenshot({ path: join(ARTIFACTS, "dashboard-analytics-mobile.png"), fullPage: true });
});
