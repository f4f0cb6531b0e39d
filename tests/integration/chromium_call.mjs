// End-to-end call between two headless Chromium pages through Gatehouse,
// driven through the demo page's UI. Run by test_chromium.py, which starts
// the daemon, creates the users and writes the settings file:
//
//   node chromium_call.mjs SETTINGS.json
//
// SETTINGS: {"url": "http://127.0.0.1:PORT/", "chromium": "/usr/bin/chromium",
//   "caller": {"user", "password", "totp"}, "callee": {...},
//   "relay": {"host": "127.0.0.1", "port_min": N, "port_max": N},
//   "timeout_ms": N}
//
// Prints progress lines, then "RESULT {json}" and exits 0 on success; on
// failure prints what went wrong, each page's state and console log, and
// exits 1. Only traffic to 127.0.0.1 (TESTING.md, "Network rule").
// For debugging: GH_CHROMIUM_VERBOSE=1 prints the pages' consoles on
// success too; GH_CHROMIUM_SCREENSHOTS=DIR saves both pages in the call.

import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const started = Date.now();
const TIMEOUT_MS = settings.timeout_ms || 70000;
const MEDIA = 'audio,video,data';

function log(...args) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(5);
  console.log(`[${t}s]`, ...args);
}

class Failure extends Error {}

function check(cond, what) {
  if (!cond) throw new Failure(what);
}

/** Polls fn (async) until it returns a truthy value; a Failure thrown by
 * fn ends the wait at once, other errors are retried. */
async function until(what, fn, timeoutMs = 15000, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      if (e instanceof Failure) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Failure(`timed out after ${timeoutMs} ms waiting for ${what}` +
        (last ? ` (last: ${last instanceof Error ? last.message : JSON.stringify(last)})` : ''));
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// Facts about the current call read inside a page: the selected pair, the
// inbound video, the remote video element, candidates seen, the indicator.
async function callFacts(page) {
  return page.evaluate(async () => {
    const gh = window.gh;
    if (!gh) return {page: location.href, gh: 'not loaded'};
    const call = gh.currentCall();
    if (!call || !call.pc) return {call: null, status: document.getElementById('status').textContent};
    const report = await call.pc.getStats();
    const byId = new Map();
    let transport = null;
    let video = null;
    report.forEach((s) => {
      byId.set(s.id, s);
      if (s.type === 'transport' && s.selectedCandidatePairId) transport = s;
      if (s.type === 'inbound-rtp' && s.kind === 'video') video = s;
    });
    const pair = transport ? byId.get(transport.selectedCandidatePairId) : null;
    const cand = (c) => c && {type: c.candidateType, address: c.address || c.ip || null,
      port: c.port, protocol: c.protocol, relayProtocol: c.relayProtocol || null, url: c.url || null};
    const el = document.getElementById('remote-video');
    const sec = document.getElementById('security');
    return {
      call: call.id,
      state: call.state,
      media: call.media,
      connectionState: call.pc.connectionState,
      pair: pair && {state: pair.state, local: cand(byId.get(pair.localCandidateId)),
        remote: cand(byId.get(pair.remoteCandidateId))},
      dtlsState: transport && transport.dtlsState,
      framesDecoded: video ? video.framesDecoded || 0 : 0,
      frameWidth: video ? video.frameWidth || 0 : 0,
      remoteCandidates: call.remoteCandidates.slice(),
      localCandidates: call.localCandidates.slice(),
      videoWidth: el.videoWidth,
      currentTime: el.currentTime,
      security: gh.securityState(),
      indicator: {relayed: sec.dataset.relayed, encrypted: sec.dataset.encrypted,
        recorded: sec.dataset.recorded, text: sec.innerText},
      dataChannel: call.dataChannel ? call.dataChannel.readyState : null,
      status: document.getElementById('status').textContent,
    };
  });
}

const CANDIDATE_RE = /^candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ (\S+)/;

function checkRemoteCandidates(who, facts) {
  const {host, port_min: lo, port_max: hi} = settings.relay;
  check(facts.remoteCandidates.length > 0, `${who}: received no remote candidates over signaling`);
  for (const line of facts.remoteCandidates) {
    const m = CANDIDATE_RE.exec(line);
    check(m, `${who}: unparsable remote candidate ${JSON.stringify(line)}`);
    const [, proto, ip, port, typ] = m;
    check(typ === 'relay', `${who}: remote candidate is typ ${typ}, not relay: ${line}`);
    check(proto.toLowerCase() === 'udp', `${who}: remote candidate transport ${proto}: ${line}`);
    check(ip === host && +port >= lo && +port <= hi,
      `${who}: remote candidate ${ip}:${port} is not on the Gatehouse relay ${host}:${lo}-${hi}: ${line}`);
  }
}

function checkSelectedPair(who, facts) {
  const p = facts.pair;
  check(p, `${who}: no selected candidate pair in getStats`);
  check(p.local && p.local.type === 'relay',
    `${who}: selected local candidate is ${p.local && p.local.type}, not relay`);
  check(p.remote && p.remote.type === 'relay',
    `${who}: selected remote candidate is ${p.remote && p.remote.type}, not relay`);
  const {host, port_min: lo, port_max: hi} = settings.relay;
  for (const [end, c] of [['local', p.local], ['remote', p.remote]]) {
    if (c.address) {
      check(c.address === host && c.port >= lo && c.port <= hi,
        `${who}: selected ${end} candidate ${c.address}:${c.port} is not on the Gatehouse relay`);
    }
  }
}

async function main() {
  const pages = {};
  const consoles = {caller: [], callee: []};
  let browser;
  const overall = setTimeout(() => {
    console.log(`FAIL: the whole run took longer than ${TIMEOUT_MS} ms`);
    dump(pages, consoles).finally(() => process.exit(1));
  }, TIMEOUT_MS);
  try {
    browser = await chromium.launch({
      executablePath: settings.chromium,
      headless: true,
      // TESTING.md, "Headless Chromium": these work as root on these
      // machines; without the loopback flag Chromium gathers nothing here,
      // relay candidates through a TURN server on 127.0.0.1 included.
      args: [
        '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
        '--no-first-run', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
        '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
      ],
      timeout: 30000,
    });
    log('chromium', browser.version());
    for (const role of ['callee', 'caller']) {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      page.on('console', (m) => consoles[role].push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => consoles[role].push(`pageerror: ${e.message}`));
      pages[role] = page;
    }

    // Log in through the form, callee first so the caller sees it online.
    for (const role of ['callee', 'caller']) {
      const page = pages[role];
      const u = settings[role];
      await page.goto(settings.url + '?debug=1');
      await page.waitForSelector('#gh-demo[data-ready="true"]', {state: 'attached', timeout: 10000});
      await page.fill('#user', u.user);
      await page.fill('#password', u.password);
      await page.fill('#totp', u.totp);
      await page.click('#login');
      await until(`${role} login`, async () => {
        const s = await page.textContent('#status');
        if (/failed|Disconnected/i.test(s)) throw new Failure(`${role} login: ${s}`);
        return s === `Logged in as ${u.user}`;
      }, 10000, 100);
      log(`${u.user} logged in`);
    }

    // The caller calls with audio, video and data.
    const button = `#contacts button.call[data-user="${settings.callee.user}"][data-media="${MEDIA}"]`;
    await until(`a ${MEDIA} call button for ${settings.callee.user}`, async () => {
      if (await pages.caller.$(button)) return true;
      await pages.caller.click('#refresh');
      return false;
    }, 10000, 500);
    await pages.caller.click(button);
    log(`${settings.caller.user} calls ${settings.callee.user} (${MEDIA})`);

    // The callee answers.
    await pages.callee.waitForSelector('#answer:not([disabled])', {state: 'visible', timeout: 10000});
    const prompt = await pages.callee.textContent('#incoming-text');
    check(prompt.includes(settings.caller.user) && prompt.includes('audio, video, data'),
      `callee's prompt does not name the caller and media: ${JSON.stringify(prompt)}`);
    await pages.callee.click('#answer');
    log(`${settings.callee.user} answers`);

    // Both connected, with video frames decoded and advancing.
    const first = {};
    for (const role of ['caller', 'callee']) {
      first[role] = await until(`${role}: call connected with decoded remote video`, async () => {
        const f = await callFacts(pages[role]);
        if (f.state === 'failed' || f.connectionState === 'failed') {
          throw new Failure(`${role}: the peer connection failed: ${JSON.stringify(f)}`);
        }
        return f.state === 'connected' && f.framesDecoded > 0 && f.videoWidth > 0 ? f : null;
      }, 20000, 250);
      log(`${role}: connected, ${first[role].framesDecoded} frames decoded, ` +
        `${first[role].videoWidth}px wide`);
    }
    await new Promise((r) => setTimeout(r, 1500));
    const facts = {};
    for (const role of ['caller', 'callee']) {
      const f = await callFacts(pages[role]);
      facts[role] = f;
      check(f.framesDecoded > first[role].framesDecoded,
        `${role}: video frames stopped (${first[role].framesDecoded} then ${f.framesDecoded})`);
      check(f.currentTime > first[role].currentTime,
        `${role}: remote <video> does not play (currentTime ${first[role].currentTime} then ${f.currentTime})`);
      checkSelectedPair(role, f);
      checkRemoteCandidates(role, f);
      log(`${role}: selected pair ${f.pair.local.type} ${f.pair.local.address}:${f.pair.local.port}` +
        ` (${f.pair.local.relayProtocol} to the relay) -> ${f.pair.remote.type} ` +
        `${f.pair.remote.address}:${f.pair.remote.port}; ` +
        `${f.remoteCandidates.length} remote candidates, all relay`);
    }

    // The security indicator: relayed and encrypted, not recorded.
    for (const role of ['caller', 'callee']) {
      const f = await until(`${role}: security indicator relayed + encrypted`, async () => {
        const x = await callFacts(pages[role]);
        return x.security.relayed === true && x.security.encrypted === true &&
          x.indicator.relayed === 'true' && x.indicator.encrypted === 'true' ? x : null;
      }, 5000, 250);
      if (process.env.GH_CHROMIUM_SCREENSHOTS) {
        await pages[role].screenshot({path: `${process.env.GH_CHROMIUM_SCREENSHOTS}/${role}.png`, fullPage: true});
      }
      const s = f.security;
      check(s.srtpCipher && s.dtlsCipher, `${role}: ciphers missing: ${JSON.stringify(s)}`);
      check(s.recorded === false && f.indicator.recorded === 'false',
        `${role}: call shown as recorded: ${JSON.stringify(s)}`);
      check(/Relayed through the gateway/.test(f.indicator.text) && /Encrypted/.test(f.indicator.text) &&
        /Recorded: no/.test(f.indicator.text), `${role}: indicator text: ${JSON.stringify(f.indicator.text)}`);
      facts[role].security = s;
      log(`${role}: indicator: ${f.indicator.text.replace(/\n/g, ' | ')}`);
    }

    // The data channel carries a message each way.
    for (const [from, to] of [['caller', 'callee'], ['callee', 'caller']]) {
      const text = `hello from ${settings[from].user}`;
      await until(`${from}: data channel open`, async () =>
        !(await pages[from].$eval('#chat-send', (b) => b.disabled)), 10000, 100);
      await pages[from].fill('#chat-input', text);
      await pages[from].click('#chat-send');
      await until(`${to}: data channel message`, async () =>
        (await pages[to].textContent('#chat-log')).includes(`${settings[from].user}: ${text}`), 5000, 100);
    }
    log('data channel: a message each way');

    // The caller hangs up; the callee sees it.
    await pages.caller.click('#hangup');
    await until('callee: hangup seen', async () => {
      const s = await pages.callee.textContent('#status');
      const n = await pages.callee.evaluate(() => window.gh.calls.size);
      return n === 0 && /ended: the other side hung up/.test(s);
    }, 10000, 100);
    const callerStatus = await pages.caller.textContent('#status');
    check(/ended: you ended the call/.test(callerStatus), `caller status after hangup: ${callerStatus}`);
    const after = await pages.callee.evaluate(() => window.gh.securityState());
    check(after.call === null, `callee: security state still names a call after hangup: ${JSON.stringify(after)}`);
    log('hangup seen by the callee');

    // The other way round, rejected: bob calls alice (audio), alice rejects.
    const back = `#contacts button.call[data-user="${settings.caller.user}"][data-media="audio,data"]`;
    await until(`an audio call button for ${settings.caller.user}`, async () =>
      !!(await pages.callee.$(back + ':not([disabled])')), 5000, 100);
    await pages.callee.click(back);
    await pages.caller.waitForSelector('#reject:not([disabled])', {state: 'visible', timeout: 10000});
    await pages.caller.click('#reject');
    await until('callee: rejection seen', async () =>
      /ended: the call was rejected/.test(await pages.callee.textContent('#status')), 10000, 100);
    check(/Rejected the call from/.test(await pages.caller.textContent('#status')),
      'caller status after rejecting: ' + await pages.caller.textContent('#status'));
    for (const role of ['caller', 'callee']) {
      const n = await pages[role].evaluate(() => window.gh.calls.size);
      check(n === 0, `${role}: ${n} calls left after the rejection`);
    }
    log('a call the other way, rejected: both sides saw it end');

    // The pages ran without script errors or CSP violations (the page is
    // served with a CSP that forbids inline script).
    for (const role of ['caller', 'callee']) {
      const bad = consoles[role].filter((l) => l.startsWith('pageerror:') ||
        /Content Security Policy|Refused to (execute|load|apply|connect)/.test(l));
      check(bad.length === 0, `${role}: page errors: ${bad.join(' | ')}`);
    }

    const result = {};
    for (const role of ['caller', 'callee']) {
      const f = facts[role];
      result[role] = {pair: f.pair, framesDecoded: f.framesDecoded, videoWidth: f.videoWidth,
        remoteCandidates: f.remoteCandidates, localCandidates: f.localCandidates, security: f.security};
    }
    console.log('RESULT ' + JSON.stringify(result));
    clearTimeout(overall);
    if (process.env.GH_CHROMIUM_VERBOSE) await dump(pages, consoles);
    await browser.close();
    return 0;
  } catch (e) {
    clearTimeout(overall);
    console.log(`FAIL: ${e instanceof Failure ? e.message : (e && e.stack) || e}`);
    await dump(pages, consoles);
    if (browser) await browser.close().catch(() => {});
    return 1;
  }
}

async function dump(pages, consoles) {
  for (const role of Object.keys(pages)) {
    console.log(`---- ${role} page state`);
    try {
      const f = await Promise.race([callFacts(pages[role]),
        new Promise((r) => setTimeout(() => r('(no answer)'), 3000))]);
      console.log(JSON.stringify(f, null, 1));
    } catch (e) {
      console.log(`(cannot read: ${e.message})`);
    }
    console.log(`---- ${role} console (last 150 lines)`);
    for (const line of consoles[role].slice(-150)) console.log(line.length > 2000 ? line.slice(0, 2000) + '…' : line);
  }
}

process.exitCode = await main();
