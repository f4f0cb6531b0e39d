// A login through the demo page while the gateway is too busy to check it:
// the JavaScript client must try again by itself (retry_after_ms) and get
// in. Run by test_chromium.py, which keeps the login checker busy:
//
//   node chromium_login_busy.mjs SETTINGS.json
//
// SETTINGS: {"url": "http://127.0.0.1:PORT/", "chromium": "/usr/bin/chromium",
//   "user", "password", "totp", "timeout_ms": N}
//
// Prints "BUSY-SEEN" as soon as the page says the gateway is busy (the
// test then lets the checker go), then "RESULT {json}" with every status
// the page showed, and exits 0 when the page logged in; on failure prints
// what went wrong and the page's console, and exits 1. Only traffic to
// 127.0.0.1.

import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const TIMEOUT_MS = settings.timeout_ms || 40000;
const consoleLines = [];
const statuses = [];
let browser;

async function run() {
  browser = await chromium.launch({
    executablePath: settings.chromium,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
  const page = await (await browser.newContext()).newPage();
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  await page.goto(settings.url);
  await page.waitForSelector('#gh-demo[data-ready="true"]', {state: 'attached', timeout: 10000});
  await page.fill('#user', settings.user);
  await page.fill('#password', settings.password);
  await page.fill('#totp', settings.totp);
  await page.click('#login');
  const deadline = Date.now() + TIMEOUT_MS - 5000;
  let busySeen = false;
  for (;;) {
    const s = await page.textContent('#status');
    if (statuses[statuses.length - 1] !== s) statuses.push(s);
    if (!busySeen && /busy/i.test(s)) {
      busySeen = true;
      console.log('BUSY-SEEN');
    }
    if (s === `Logged in as ${settings.user}`) break;
    if (/failed|Disconnected/i.test(s)) throw new Error(`login: ${s}`);
    if (Date.now() > deadline) throw new Error(`no login; statuses: ${JSON.stringify(statuses)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log('RESULT ' + JSON.stringify({busySeen, statuses}));
}

const guard = setTimeout(() => {
  console.log(`FAIL: took longer than ${TIMEOUT_MS} ms`);
  process.exit(1);
}, TIMEOUT_MS);
try {
  await run();
  clearTimeout(guard);
  await browser.close();
  process.exit(0);
} catch (e) {
  console.log(`FAIL: ${e.message}\nstatuses: ${JSON.stringify(statuses)}\nconsole:\n` +
    consoleLines.join('\n'));
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
