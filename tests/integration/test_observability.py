#!/usr/bin/python3
"""Observability: Prometheus metrics, the audit story of a real call, and
what must never reach the logs.

test_metrics_after_activity
    Logins (ok and failed), a call allowed and one denied, a removed ICE
    candidate, TURN allocations with the call's credentials relaying a
    known number of bytes each way, refused permissions (enough of them
    for one relay_scanning alert), a hangup. GET /metrics (no token) is
    linted by `promtool check metrics` (exit 0, nothing printed) and by
    our own reading of the exposition format, and every value is checked
    against what the test did: counters exactly, relayed bytes and
    packets exactly (the test is the only traffic), gauges during and
    after the call, histograms consistent (cumulative buckets, +Inf ==
    _count), one gatehouse_alerts_total line for every alert kind.

test_call_audit_story
    An aiortc call (audio + a data channel carrying 200 messages of 1000
    bytes) through Gatehouse, relay only. The audit trail must tell the
    whole story: login.success (mfa true) for both, call.decided allow
    with the rule, call.accepted, allocation.created for every relay in
    the SDPs, call.ended, allocation.deleted with bytes and packets for
    each, and call.traffic (call, bytes/packets to/from peers summed over
    the call's allocations). The byte counts are checked three ways (see
    check_traffic()): the two ends of the relay agree, the relay agrees
    with what aiortc's own DTLS transport says it put on the wire, and
    the direction that carried the data carried at least the payload and
    at most payload x 1.10 plus a measured, bounded overhead.

test_no_secret_leaks
    A session that uses every secret there is: user passwords, TOTP
    codes and secrets, JWTs (valid, expired, forged), TURN call
    credentials, the static TURN user's password, admin passwords, TOTP
    codes and tokens, passwords and TOTP secrets set through the admin
    API, wrong passwords, the TURN shared secret (state_dir/turn_secret),
    and the secrets at rest (password hashes and TOTP keys in users.db,
    the TURN TLS private key). Then stderr, the audit file and the syslog
    stream (a UDP collector on 127.0.0.1) are searched for each, also in
    hex / base64 / JSON-escaped forms (TOTP codes: as whole numbers).

test_outside_input_escaped
    Logins (signaling and admin) and a WebSocket Origin with quotes,
    backslashes, CR/LF/TAB, DEL, ESC, NUL, Unicode line separators and
    JSON-looking text: every audit line stays one JSON object, names
    round-trip exactly, stderr carries no raw control or non-ASCII byte
    and no forged line, every admin login attempt is audited with its
    user and reason, and nothing is dropped.

test_oversized_events_still_audited
    A failed admin login with an 80 KiB user name (no token needed) and
    an admin's PUT /api/policy of a 116 KB policy: both must leave an
    audit line, and neither may count as a writer overload.

test_syslog_severity_of_failures
    A failed signaling login ("failure"), a failed admin login and a
    refused policy reload ("failed") all reach the SIEM as
    authpriv.warning.

test_grafana_dashboard
    docs/grafana-dashboard.json: valid JSON, schemaVersion 39, the
    ${DS_PROMETHEUS} data source everywhere, every query valid PromQL
    (promtool check rules) naming only metrics that gateway/metrics.c
    renders and a running daemon serves.

Every test that reads the audit file checks all of it: one JSON object
per line, each with ts (RFC 3339 UTC with milliseconds, equal to
ts_ms), ts_ms, event and outcome.

Traffic only to 127.0.0.1. Run: /usr/bin/python3 test_observability.py
[--gatehouse BINARY]; GH_TESTS=substring selects tests; GH_KEEP_OUTPUT=DIR
keeps the stderr and audit output of the leak and escaping tests there.
About 20 s.
"""

import asyncio
import base64
import binascii
import calendar
import http.client
import json
import logging
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
from gh import with_log  # noqa: E402
from der import b64u, der_read, der_children  # noqa: E402
import sigclient as sc  # noqa: E402
import turnclient as tc  # noqa: E402
import test_call_e2e as e2e  # noqa: E402  (also disables aioice host gathering)

from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError  # noqa: E402

ARGS = None

ALERT_KINDS = ("password_guessing_user", "password_guessing_source", "credential_stuffing",
               "relay_scanning", "traffic_spike", "signaling_flood", "call_fanout")

TS_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z$")
LOG_LINE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (error|warning|info|debug) ")


# ------------------------------------------------------------ helpers

def http_req(g, method, path, body=None, token=None, headers=None):
    """One request to the admin listener: (status, headers, body bytes)."""
    h = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(data))
    if token is not None:
        h["Authorization"] = "Bearer " + token
    conn = http.client.HTTPConnection("127.0.0.1", g.admin_port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in h.items():
            conn.putheader(k, v)
        conn.endheaders(data)
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


def api(g, method, path, body=None, token=None, want=None):
    st, _, raw = http_req(g, method, path, body, token)
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw
    if want is not None:
        assert st == want, "%s %s: HTTP %d %r, expected %d" % (method, path, st, parsed, want)
    return st, parsed


def admin_login(g, u, code=None):
    st, b = api(g, "POST", "/api/login", {"user": u.name, "password": u.password,
                                         "totp": code or u.next_totp()})
    assert st == 200 and isinstance(b, dict) and b.get("token"), \
        "admin login of %s: HTTP %d %r" % (u.name, st, b)
    return b["token"]


def scrape(g):
    st, hdrs, body = http_req(g, "GET", "/metrics")
    assert st == 200, "GET /metrics: HTTP %d %r" % (st, body[:300])
    ctype = hdrs.get("content-type", "")
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, \
        "GET /metrics Content-Type %r, expected text/plain; version=0.0.4" % ctype
    return body.decode("utf-8")


def promtool_check(text):
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
    assert p.returncode == 0 and not out, \
        "promtool check metrics: exit %d, printed:\n%s\n--- exposition:\n%s" % (
            p.returncode, out, text)


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Reads the exposition text strictly enough to catch what promtool
    lets through: returns (samples {(name, ((k, v), ...)): float},
    types {family: type})."""
    samples, types, helps = {}, {}, {}
    assert text.endswith("\n"), "exposition does not end with a newline"
    for n, line in enumerate(text.split("\n")[:-1], 1):
        assert line, "empty line %d in the exposition" % n
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helps, "HELP twice for %s" % name
            helps[name] = line
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert name not in types, "TYPE twice for %s" % name
            types[name] = typ
            continue
        assert not line.startswith("#"), "unexpected comment line %d: %r" % (n, line)
        m = SAMPLE_RE.match(line)
        assert m, "line %d is not a sample: %r" % (n, line)
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        fam = re.sub(r"_(bucket|sum|count)$", "", name) if re.sub(
            r"_(bucket|sum|count)$", "", name) in types else name
        assert fam in types, "sample %s before/without a TYPE line" % name
        lab = tuple(sorted(LABEL_RE.findall(labels)))
        key = (name, lab)
        assert key not in samples, "duplicate series %s%s" % (name, labels)
        samples[key] = float(value)
    for fam, typ in types.items():
        assert fam in helps, "no HELP for %s" % fam
        if typ == "counter":
            assert fam.endswith("_total"), "counter %s does not end in _total" % fam
    return samples, types


def val(samples, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, "no series %s%r in /metrics; have: %s" % (
        name, labels, sorted(set(k[0] for k in samples)))
    return samples[key]


def check_histogram(samples, fam):
    buckets = sorted(((float(dict(l)["le"]), v) for (n, l), v in samples.items()
                      if n == fam + "_bucket"), key=lambda x: x[0])
    assert buckets and buckets[-1][0] == float("inf"), "%s: no +Inf bucket" % fam
    for (le1, v1), (le2, v2) in zip(buckets, buckets[1:]):
        assert v2 >= v1, "%s: bucket le=%g (%g) > le=%g (%g): not cumulative" % (fam, le1, v1, le2, v2)
    count = val(samples, fam + "_count")
    total = val(samples, fam + "_sum")
    assert buckets[-1][1] == count, "%s: +Inf bucket %g != _count %g" % (fam, buckets[-1][1], count)
    # Durations are measured in whole milliseconds: 0 is possible.
    assert total >= 0 and (count > 0 or total == 0), "%s: _sum %g with _count %g" % (fam, total, count)
    return count


def audit_path(g):
    return g.config.get("log", {}).get("audit_file") or os.path.join(g.state_dir, "audit.jsonl")


def read_audit(g):
    """Parses the whole audit file strictly: every line one JSON object
    with ts (RFC 3339 UTC, milliseconds, the same instant as ts_ms),
    ts_ms, event and outcome. Returns the objects in file order."""
    with open(audit_path(g), "rb") as f:
        raw = f.read()
    assert not raw or raw.endswith(b"\n"), "audit file does not end with a newline: %r" % raw[-200:]
    out, problems = [], []
    for n, line in enumerate(raw.split(b"\n")[:-1], 1):
        try:
            text = line.decode("utf-8")
            o = json.loads(text)
        except ValueError as e:
            problems.append("line %d is not JSON (%s): %r" % (n, e, line[:300]))
            continue
        if not isinstance(o, dict):
            problems.append("line %d is not an object: %r" % (n, line[:300]))
            continue
        miss = [k for k in ("ts", "ts_ms", "event", "outcome") if k not in o]
        if miss:
            problems.append("line %d (%s) lacks %s: %s" % (n, o.get("event"), miss, text[:300]))
        ts, ms = o.get("ts"), o.get("ts_ms")
        m = TS_RE.match(ts) if isinstance(ts, str) else None
        if not m:
            problems.append("line %d: ts %r is not RFC 3339 UTC with milliseconds" % (n, ts))
        elif not isinstance(ms, int) or isinstance(ms, bool):
            problems.append("line %d: ts_ms %r is not an integer" % (n, ms))
        else:
            y, mo, d, hh, mi, ss, mmm = (int(x) for x in m.groups())
            want = calendar.timegm((y, mo, d, hh, mi, ss)) * 1000 + mmm
            if want != ms:
                problems.append("line %d: ts %s is %d ms, ts_ms says %d" % (n, ts, want, ms))
        if not isinstance(o.get("event"), str) or not o.get("event"):
            problems.append("line %d: event %r" % (n, o.get("event")))
        if "outcome" in o and not isinstance(o["outcome"], str):
            problems.append("line %d: outcome %r is not a string" % (n, o["outcome"]))
        out.append(o)
    assert not problems, "audit file %s:\n  %s" % (audit_path(g), "\n  ".join(problems[:20]))
    return out


def wait_audit(g, pred, timeout=5.0, what="audit events"):
    """Polls the audit file (written by a thread) until pred(events) is
    true; returns the events."""
    deadline = time.monotonic() + timeout
    while True:
        ev = read_audit(g)
        if pred(ev):
            return ev
        if time.monotonic() > deadline:
            raise AssertionError("%s not in the audit trail within %.0f s; last events:\n  %s" % (
                what, timeout, "\n  ".join(json.dumps(e) for e in ev[-25:])))
        time.sleep(0.1)


def of(events, name, **match):
    return [e for e in events if e.get("event") == name
            and all(e.get(k) == v for k, v in match.items())]


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def team_daemon(extra_users=(), policy_rules=None, config=None):
    """A daemon with a policy "team-calls" (group team: alice, bob) and
    local users alice, bob (+ extra (name, groups)). Returns (g, users)."""
    g = gh.Gatehouse(ARGS.gatehouse, config=config)
    policy = os.path.join(g.workdir, "policy.json")
    g.config["policy"] = {"file": policy}
    sc.write_policy(policy, policy_rules or [
        {"name": "team-calls", "from": "group:team", "to": "group:team",
         "media": ["audio", "video", "data"], "action": "allow"}], {"team": ["alice", "bob"]})
    users = {}
    for name, groups in [("alice", ["team"]), ("bob", ["team"])] + list(extra_users):
        users[name] = sc.create_user(g, name, "pw-%s-%s" % (name, secrets.token_hex(8)),
                                     groups=groups)
    return g, users


def turn_pair(g, a_server, b_server):
    """Two UDP TURN clients with the call's credentials, allocated, each
    with a permission for the other's relayed address."""
    ta = tc.TurnClient(g.host, g.port, "udp", a_server["username"], a_server["credential"])
    tb = tc.TurnClient(g.host, g.port, "udp", b_server["username"], b_server["credential"])
    for who, t in (("alice", ta), ("bob", tb)):
        r = t.allocate()
        assert r is not None and r.ok, "%s: Allocate with the call's credentials: %r" % (who, r)
    r = ta.create_permission([tb.relayed])
    assert r is not None and r.ok, "alice: CreatePermission for bob's relay: %r" % r
    r = tb.create_permission([ta.relayed])
    assert r is not None and r.ok, "bob: CreatePermission for alice's relay: %r" % r
    return ta, tb


def relay_bytes(src, dst, n, size):
    """src sends n Send indications of size bytes to dst's relayed
    address; dst must receive them all as Data indications from src's."""
    got = 0
    for i in range(n):
        # RTP-like (RFC 9443: first byte 128-191): a call's allocation
        # carries media only.
        payload = b"\x80" + bytes([i & 0xFF]) * (size - 1)
        src.send_indication(dst.relayed, payload)
        d = dst.recv_data(2.0)
        assert d is not None and d[0] == "data" and d[2] == payload and tuple(d[1]) == tuple(src.relayed), \
            "relayed datagram %d: %r" % (i, d and (d[0], d[1], len(d[2] or b"")))
        got += len(d[2])
    return got


# ------------------------------------------------------ a. metrics

N_AB, SIZE_AB = 10, 500     # alice -> bob through the relay
N_BA, SIZE_BA = 5, 300      # bob -> alice
SCANS = 20                  # refused permissions: relay_scanning's default threshold


def test_metrics_after_activity():
    g, U = team_daemon(extra_users=[("mallory", [])])

    async def body():
        m0, _ = parse_metrics(scrape(g))
        for k in ALERT_KINDS:
            assert val(m0, "gatehouse_alerts_total", kind=k) == 0
        ca = await sc.logged_in(g, U["alice"], "alice")
        cb = await sc.logged_in(g, U["bob"], "bob")
        cm = await sc.logged_in(g, U["mallory"], "mallory")
        async with sc.SigClient(sc.ws_url(g), name="bad") as c:
            r = await c.login("alice", "not-the-password", sc.wrong_totp(U["alice"].secret))
            assert r.get("type") == "error" and r.get("code") == "auth_failed", r
        r = await ca.request({"type": "call", "to": "mallory", "media": ["audio"]})
        assert r.get("type") == "error" and r.get("code") == "forbidden", "alice -> mallory: %r" % r
        r = await ca.request({"type": "call", "to": "bob", "media": ["audio", "data"]})
        assert r.get("type") == "call.ok", "alice -> bob: %r" % r
        cid = r["call"]
        await cb.wait_for("incoming", call=cid)
        r2 = await cb.request({"type": "accept", "call": cid})
        assert r2.get("type") == "accept.ok", r2
        await ca.wait_for("accepted", call=cid)
        # A host candidate: the relay-only filter removes it.
        await ca.send({"type": "candidate", "call": cid, "candidate": {
            "candidate": "candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host",
            "sdpMid": "0", "sdpMLineIndex": 0}})
        await ca.ping()

        loop = asyncio.get_running_loop()

        def turn_part():
            ta, tb = turn_pair(g, r["ice_servers"][0], r2["ice_servers"][0])
            try:
                sent_ab = relay_bytes(ta, tb, N_AB, SIZE_AB)
                sent_ba = relay_bytes(tb, ta, N_BA, SIZE_BA)
                refused = []
                for i in range(SCANS):
                    # Loopback ports that are no relay of this call (nothing
                    # is sent to them: the permission is refused).
                    resp = ta.create_permission([("127.0.0.1", 9 + i)])
                    refused.append(resp.code if resp is not None else None)
                assert refused == [403] * SCANS, "permissions outside the call: %r" % refused
                return ta, tb, sent_ab, sent_ba
            except BaseException:
                ta.close()
                tb.close()
                raise

        ta, tb, sent_ab, sent_ba = await loop.run_in_executor(None, turn_part)
        try:
            during_text = scrape(g)
            promtool_check(during_text)
            m1, _ = parse_metrics(during_text)
            assert val(m1, "gatehouse_sessions") == 3, "sessions %g, 3 logged in" % val(m1, "gatehouse_sessions")
            assert val(m1, "gatehouse_active_calls") == 1
            assert val(m1, "gatehouse_active_allocations") == 2
            await ca.send({"type": "hangup", "call": cid})
            h = await cb.wait_for("hangup", call=cid)
            assert h.get("reason") == "hangup", h
            await ca.ping()
        finally:
            await loop.run_in_executor(None, ta.close, False)
            await loop.run_in_executor(None, tb.close, False)
        for c in (ca, cb, cm):
            await c.close()
        return sent_ab, sent_ba

    with g:
        def check():
            sent_ab, sent_ba = run(body())
            # Sessions are gone once their sockets are closed.
            deadline = time.monotonic() + 5
            while True:
                text = scrape(g)
                m, types = parse_metrics(text)
                if val(m, "gatehouse_sessions") == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            promtool_check(text)
            print("metrics after the activity:\n" + "\n".join(
                l for l in text.splitlines() if not l.startswith("#") and "_bucket" not in l), flush=True)
            want = [
                ("gatehouse_sessions", {}, 0),
                ("gatehouse_logins_total", {"outcome": "success"}, 3),
                ("gatehouse_logins_total", {"outcome": "failure"}, 1),
                ("gatehouse_calls_total", {"decision": "allow"}, 1),
                ("gatehouse_calls_total", {"decision": "deny"}, 1),
                ("gatehouse_calls_ended_total", {}, 1),
                ("gatehouse_active_calls", {}, 0),
                ("gatehouse_active_allocations", {}, 0),
                ("gatehouse_allocations_created_total", {}, 2),
                ("gatehouse_relayed_bytes_total", {"direction": "to_peer"}, sent_ab + sent_ba),
                ("gatehouse_relayed_bytes_total", {"direction": "from_peer"}, sent_ab + sent_ba),
                ("gatehouse_relayed_packets_total", {"direction": "to_peer"}, N_AB + N_BA),
                ("gatehouse_relayed_packets_total", {"direction": "from_peer"}, N_AB + N_BA),
                ("gatehouse_permissions_refused_total", {}, SCANS),
                ("gatehouse_turn_auth_failures_total", {}, 0),
                ("gatehouse_candidates_removed_total", {}, 1),
                ("gatehouse_sessions_abuse_total", {}, 0),
                ("gatehouse_audit_dropped_total", {}, 0),
                ("gatehouse_syslog_failed_total", {}, 0),
                ("gatehouse_blocked_sources", {}, 0),
            ]
            wrong = []
            for name, labels, v in want:
                got = val(m, name, **labels)
                if got != v:
                    wrong.append("%s%s = %g, expected %g" % (name, labels or "", got, v))
            for k in ALERT_KINDS:
                got = val(m, "gatehouse_alerts_total", kind=k)
                exp = 1 if k == "relay_scanning" else 0
                if got != exp:
                    wrong.append("gatehouse_alerts_total{kind=%r} = %g, expected %d" % (k, got, exp))
            kinds = sorted(dict(l)["kind"] for (n, l) in m if n == "gatehouse_alerts_total")
            if kinds != sorted(ALERT_KINDS):
                wrong.append("alert kinds %s, expected %s" % (kinds, sorted(ALERT_KINDS)))
            n_login = check_histogram(m, "gatehouse_login_duration_seconds")
            n_setup = check_histogram(m, "gatehouse_call_setup_duration_seconds")
            if n_login != 4:
                wrong.append("login histogram _count %g, expected 4 (3 ok + 1 failed)" % n_login)
            if n_setup != 1:
                wrong.append("call set-up histogram _count %g, expected 1" % n_setup)
            for fam, typ in (("gatehouse_sessions", "gauge"), ("gatehouse_active_calls", "gauge"),
                             ("gatehouse_active_allocations", "gauge"),
                             ("gatehouse_login_duration_seconds", "histogram"),
                             ("gatehouse_call_setup_duration_seconds", "histogram")):
                if types.get(fam) != typ:
                    wrong.append("%s is TYPE %s, expected %s" % (fam, types.get(fam), typ))
            assert not wrong, "metrics do not match the activity:\n  " + "\n  ".join(wrong)
            # The audit says the same thing as the counters.
            ev = wait_audit(g, lambda ev: of(ev, "alert", kind="relay_scanning"),
                            what="the relay_scanning alert")
            assert len(of(ev, "permission.refused")) == SCANS, "permission.refused events: %d" % len(
                of(ev, "permission.refused"))
            # No token needed, but the Origin rule applies.
            st, _, _ = http_req(g, "GET", "/metrics", headers={"Origin": "http://evil.example"})
            assert st == 403, "GET /metrics with a foreign Origin: HTTP %d, expected 403" % st
        with_log(g, check)


# ------------------------------------------------ b. audit story

DC_MESSAGES, DC_SIZE = 200, 1000
DC_PAYLOAD = DC_MESSAGES * DC_SIZE
# Per RTP packet on the wire beyond aiortc's counted payload: RTP header
# 12 + header extensions (mid, audio level: <= 16 with padding) + SRTP
# auth tag 10 = 38; rounded up.
RTP_OVERHEAD = 40
# What the data direction carries besides data and audio, bounded once:
# the DTLS handshake flights of one side (certificate ~0.5 KB, < 3 KB in
# all), SCTP INIT/COOKIE/DCEP (< 1 KB), SRTCP reports (~100 B/s), ICE
# checks and consent (~100-150 B each, a few dozen). Measured here
# (aiortc 1.4, DTLS 1.2 AES-GCM): alice -> bob relayed 216,022 B for
# 200,000 B of data and 743 B of audio RTP in 14 packets; the data itself
# costs 1000 + 28 (SCTP common + DATA chunk header) + 37 (DTLS record
# header + AEAD nonce and tag) = 1065 B per message, 213,000 B; the rest,
# ~1.7 KB beyond the audio, is the handshakes and the ICE checks (the
# relay counted 156 B more than aiortc's DTLS transport sent: STUN). The
# 10 % margin on the payload (20,000 B) already covers the 6.5 % SCTP/
# DTLS framing; 8 KiB more covers the handshakes with room to spare.
FIXED_OVERHEAD = 8 * 1024
AUDIO_FRAMES = 50           # 1 s of audio received at bob's end


def dtls_transports(pc):
    out = {}
    if pc.sctp is not None:
        out[id(pc.sctp.transport)] = pc.sctp.transport
    for t in pc.getTransceivers():
        if t.sender.transport is not None:
            out[id(t.sender.transport)] = t.sender.transport
    return list(out.values())


def wire_stats(pc):
    """What aiortc's DTLS transports put on / took off the wire (DTLS
    records and SRTP/SRTCP; ICE STUN is not counted)."""
    tx = rx = ptx = prx = 0
    for d in dtls_transports(pc):
        for s in d._get_stats().values():
            tx += s.bytesSent
            rx += s.bytesReceived
            ptx += s.packetsSent
            prx += s.packetsReceived
    return tx, rx, ptx, prx


async def rtp_sent(pc):
    b = p = 0
    for s in pc.getSenders():
        if s.track is None:
            continue
        for st in (await s.getStats()).values():
            if st.type == "outbound-rtp":
                b += st.bytesSent
                p += st.packetsSent
    return b, p


async def audited_call(g, alice, bob):
    loop = asyncio.get_running_loop()
    ca = await sc.logged_in(g, alice, "alice")
    cb = await sc.logged_in(g, bob, "bob")
    pc_a = pc_b = None
    try:
        r = await ca.request({"type": "call", "to": "bob", "media": ["audio", "data"]})
        assert r.get("type") == "call.ok", "call refused: %r" % r
        cid = r["call"]
        await cb.wait_for("incoming", call=cid)
        r2 = await cb.request({"type": "accept", "call": cid})
        assert r2.get("type") == "accept.ok", r2
        await ca.wait_for("accepted", call=cid)
        pc_a = RTCPeerConnection(e2e.rtc_config(e2e.check_ice_servers(r, g, "call.ok")))
        pc_b = RTCPeerConnection(e2e.rtc_config(e2e.check_ice_servers(r2, g, "accept.ok")))
        received = []
        done = loop.create_future()
        dc_open = loop.create_future()
        remote_track = loop.create_future()
        dc = pc_a.createDataChannel("bulk", ordered=True)
        pc_a.addTrack(AudioStreamTrack())

        @dc.on("open")
        def _open():
            if not dc_open.done():
                dc_open.set_result(True)

        @pc_b.on("datachannel")
        def _dc(ch):
            @ch.on("message")
            def _msg(m):
                received.append(m)
                if len(received) == DC_MESSAGES and not done.done():
                    done.set_result(True)

        @pc_b.on("track")
        def _track(t):
            if t.kind == "audio" and not remote_track.done():
                remote_track.set_result(t)

        await pc_a.setLocalDescription(await pc_a.createOffer())
        offer = pc_a.localDescription.sdp
        await ca.send({"type": "sdp", "call": cid, "sdp": {"type": "offer", "sdp": offer}})
        m = await cb.wait_for("sdp", call=cid, timeout=10)
        await pc_b.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"]["sdp"], type="offer"))
        await pc_b.setLocalDescription(await pc_b.createAnswer())
        answer = pc_b.localDescription.sdp
        await cb.send({"type": "sdp", "call": cid, "sdp": {"type": "answer", "sdp": answer}})
        m = await ca.wait_for("sdp", call=cid, timeout=10)
        await pc_a.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"]["sdp"], type="answer"))
        await asyncio.wait_for(dc_open, 20)
        # Distinct, incompressible messages (nothing here compresses, but
        # it rules out any doubt).
        msgs = [os.urandom(DC_SIZE) for _ in range(DC_MESSAGES)]
        for x in msgs:
            dc.send(x)
        await asyncio.wait_for(done, 20)
        assert received == msgs, "data channel: %d messages, not the ones sent" % len(received)
        track = await asyncio.wait_for(remote_track, 10)
        for i in range(AUDIO_FRAMES):
            try:
                f = await asyncio.wait_for(track.recv(), 5)
            except MediaStreamError:
                raise AssertionError("remote audio ended after %d frames" % i)
            assert f.samples > 0
        e2e.check_selected_pair(pc_a, g, "alice")
        e2e.check_selected_pair(pc_b, g, "bob")
        wa, wb = wire_stats(pc_a), wire_stats(pc_b)
        rtp_b, rtp_p = await rtp_sent(pc_a)
        relays = e2e.relay_candidates(offer) | e2e.relay_candidates(answer)
        await ca.send({"type": "hangup", "call": cid})
        h = await cb.wait_for("hangup", call=cid)
        assert h.get("reason") == "hangup", h
        return {"call": cid, "wire_a": wa, "wire_b": wb, "rtp_bytes": rtp_b, "rtp_packets": rtp_p,
                "relays": {"%s:%d" % x for x in relays}}
    finally:
        for pc in (pc_a, pc_b):
            if pc is not None:
                try:
                    await asyncio.wait_for(pc.close(), 5)
                except Exception:
                    pass
        await ca.close()
        await cb.close()


def within(a, b, frac):
    return abs(a - b) <= frac * max(a, b)


def check_traffic(ev, info):
    """The byte accounting of the call, three ways; returns a report."""
    cid = info["call"]
    created = of(ev, "allocation.created", call=cid)
    deleted = {e.get("relayed"): e for e in of(ev, "allocation.deleted", call=cid)}
    by_user = {"alice": [0, 0, 0, 0], "bob": [0, 0, 0, 0]}
    for c in created:
        d = deleted[c["relayed"]]
        acc = by_user[c["user"]]
        for i, k in enumerate(("bytes_to_peer", "bytes_from_peer", "packets_to_peer",
                               "packets_from_peer")):
            acc[i] += d[k]
    a, b = by_user["alice"], by_user["bob"]
    wa, wb = info["wire_a"], info["wire_b"]
    rep = [
        "alice -> bob: alice's relay sent %d B/%d pkts to the peer, bob's relay got %d B/%d pkts; "
        "alice's DTLS transport sent %d B/%d pkts; data %d B, audio RTP %d B in %d pkts"
        % (a[0], a[2], b[1], b[3], wa[0], wa[2], DC_PAYLOAD, info["rtp_bytes"], info["rtp_packets"]),
        "bob -> alice: bob's relay sent %d B/%d pkts, alice's relay got %d B/%d pkts; "
        "bob's DTLS transport sent %d B/%d pkts" % (b[0], b[2], a[1], a[3], wb[0], wb[2]),
    ]
    print("\n".join(rep), flush=True)
    # 1. The two ends of the relay agree (each datagram is counted once
    #    leaving one allocation and once arriving at the other).
    assert within(a[0], b[1], 0.10) and within(b[0], a[1], 0.10), \
        "the relay's two ends disagree by more than 10 %%:\n  %s" % "\n  ".join(rep)
    # 2. The relay agrees with what the peer's own stack put on the wire;
    #    the relay also carries ICE STUN (checks, consent), which the DTLS
    #    transport does not count: allow 10 % + 8 KB on top, nothing below.
    for who, relay, wire in (("alice", a[0], wa[0]), ("bob", b[0], wb[0])):
        assert wire <= relay <= wire * 1.10 + 8192, \
            "%s: relay counted %d bytes to the peer, aiortc sent %d on the wire (+ STUN)\n  %s" % (
                who, relay, wire, "\n  ".join(rep))
    # 3. The data direction carried at least the payload, and at most the
    #    payload + 10 % (SCTP 28 + DTLS record 13 + AEAD 24 = 65 B per
    #    1000-byte message: 6.5 %) plus the audio as it goes on the wire
    #    and a fixed allowance for handshakes and ICE.
    low = DC_PAYLOAD + info["rtp_bytes"]
    high = DC_PAYLOAD * 1.10 + info["rtp_bytes"] + RTP_OVERHEAD * info["rtp_packets"] + FIXED_OVERHEAD
    assert low <= a[0] <= high, \
        "alice -> bob relayed %d bytes; expected %d .. %d\n  %s" % (a[0], low, high, "\n  ".join(rep))
    return a, b


def check_call_traffic(ev, cid):
    """call.traffic: one event after call.ended whose counters are the
    sums over the allocations alive at hangup (deleted with reason "call
    ended"), to and from agreeing within 10 %. Returns problems."""
    tr = of(ev, "call.traffic", call=cid)
    if not tr:
        return ["no call.traffic event for call %s (fields call, bytes_to_peer, bytes_from_peer, "
                "packets_to_peer, packets_from_peer at hangup)" % cid]
    if len(tr) != 1:
        return ["call.traffic %d times: %r" % (len(tr), tr)]
    t, out = tr[0], []
    keys = ("bytes_to_peer", "bytes_from_peer", "packets_to_peer", "packets_from_peer")
    alive = [e for e in of(ev, "allocation.deleted", call=cid) if e.get("reason") == "call ended"]
    sums = tuple(sum(e.get(k, 0) for e in alive) for k in keys)
    got = tuple(t.get(k) for k in keys)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in got):
        return ["call.traffic fields: %r" % t]
    # The same counters as the allocation.deleted events (a datagram may
    # slip in between the two reads: 1 %).
    if not all(within(x, y, 0.01) for x, y in zip(got, sums)):
        out.append("call.traffic %r, sums over the %d allocations alive at hangup %r" % (
            dict(zip(keys, got)), len(alive), dict(zip(keys, sums))))
    if "allocations" in t and t["allocations"] != len(alive):
        out.append("call.traffic says %r allocations, %d were alive at hangup" % (t["allocations"], len(alive)))
    if not within(got[0], got[1], 0.10) or not within(got[2], got[3], 0.10):
        out.append("call.traffic: to %d vs from %d bytes, %d vs %d packets: more than 10 %% apart" % got)
    if got[0] < DC_PAYLOAD:
        out.append("call.traffic: %d bytes to peers < the %d bytes of data sent" % (got[0], DC_PAYLOAD))
    if t.get("outcome") != "success":
        out.append("call.traffic outcome %r" % t.get("outcome"))
    ended = of(ev, "call.ended", call=cid)
    if ended and ev.index(t) < ev.index(ended[0]):
        out.append("call.traffic written before call.ended")
    print("call.traffic: %s" % json.dumps(t), flush=True)
    return out


def test_call_audit_story():
    g, U = team_daemon()

    def check():
        info = run(audited_call(g, U["alice"], U["bob"]), 60)
        cid = info["call"]
        ev = wait_audit(g, lambda ev: of(ev, "call.ended", call=cid) and len(
            of(ev, "allocation.deleted", call=cid)) >= len(of(ev, "allocation.created", call=cid)),
            what="call.ended and allocation.deleted for call %s" % cid)
        # Give call.traffic a moment if it trails the deletions.
        try:
            ev = wait_audit(g, lambda ev: of(ev, "call.traffic", call=cid), 2.0, "call.traffic")
        except AssertionError:
            ev = read_audit(g)
        story = [e for e in ev if e.get("call") == cid or e.get("event") in (
            "login.success", "call.decided")]
        print("audit story of call %s:\n  %s" % (cid, "\n  ".join(
            json.dumps(e, sort_keys=True) for e in story)), flush=True)
        problems = []
        for u in ("alice", "bob"):
            ls = of(ev, "login.success", user=u)
            if len(ls) != 1 or ls[0].get("mfa") is not True or ls[0].get("outcome") != "success":
                problems.append("login.success for %s: %r (want one, mfa true)" % (u, ls))
            elif not ls[0].get("source", "").startswith("127.0.0.1:"):
                problems.append("login.success for %s: source %r" % (u, ls[0].get("source")))
        # The decision is found by who called whom (it may lack the call id,
        # see below).
        dec = [d for d in of(ev, "call.decided", user="alice", peer="bob")
               if d.get("call") in (None, cid)]
        if [(d.get("outcome"), d.get("rule"), d.get("media")) for d in dec] != [
                ("allow", "team-calls", ["audio", "data"])]:
            problems.append("call.decided: %r (want one: allow by team-calls, alice -> bob, "
                            "audio+data)" % dec)
        acc = of(ev, "call.accepted", call=cid)
        if len(acc) != 1 or not isinstance(acc[0].get("setup_ms"), int):
            problems.append("call.accepted: %r" % acc)
        created = of(ev, "allocation.created", call=cid)
        if not info["relays"] <= {c.get("relayed") for c in created}:
            problems.append("relays in the SDPs %s, allocation.created for %s" % (
                sorted(info["relays"]), [c.get("relayed") for c in created]))
        if {c.get("user") for c in created} != {"alice", "bob"}:
            problems.append("allocation.created users: %r" % [c.get("user") for c in created])
        ended = of(ev, "call.ended", call=cid)
        if len(ended) != 1 or ended[0].get("reason") != "hangup" or not isinstance(
                ended[0].get("duration_ms"), int):
            problems.append("call.ended: %r" % ended)
        deleted = {e.get("relayed"): e for e in of(ev, "allocation.deleted", call=cid)}
        for c in created:
            d = deleted.get(c.get("relayed"))
            if d is None:
                problems.append("allocation %s created, never deleted" % c.get("relayed"))
                continue
            for k in ("bytes_to_peer", "bytes_from_peer", "packets_to_peer", "packets_from_peer"):
                if not isinstance(d.get(k), int) or d[k] < 0:
                    problems.append("allocation.deleted %s: %s = %r" % (c.get("relayed"), k, d.get(k)))
        # Order: decided < accepted < created < ended <= deleted.
        pos = {id(e): i for i, e in enumerate(ev)}
        if dec and acc and ended and created:
            if not (pos[id(dec[0])] < pos[id(acc[0])] < min(pos[id(c)] for c in created)
                    < pos[id(ended[0])]):
                problems.append("events out of order: decided, accepted, allocation.created, ended")
        assert not problems, "audit story of call %s:\n  %s" % (cid, "\n  ".join(problems))
        a, b = check_traffic(ev, info)
        # Found by caller and callee above: docs/audit.md gives call.decided
        # a call id only when a live call is decided again, so the first
        # decision joins the call's events only by user, peer and time.
        # Noted, not asserted.
        late = []
        if dec and dec[0].get("call") != cid:
            print("note: call.decided for call %s carries no call id" % cid, flush=True)
        for e in ev:
            if e.get("event") in ("login.success", "call.decided", "call.accepted", "call.ended") \
                    and str(e.get("source", "")).endswith(":0"):
                late.append("%s: source %r: the signaling client's port is never filled in "
                            "(0)" % (e["event"], e["source"]))
                break
        late += check_call_traffic(ev, cid)
        assert not late, "audit story of call %s:\n  %s" % (cid, "\n  ".join(late))

    with g:
        with_log(g, check)


# ------------------------------------------------- c. secret leaks

def b64(b, url=False):
    return (base64.urlsafe_b64encode(b) if url else base64.b64encode(b)).decode()


def forms_of_text(s):
    """The forms a text secret could take in a log line."""
    b = s.encode()
    out = {s, json.dumps(s)[1:-1], b64(b), b64(b).rstrip("="), b64(b, True).rstrip("="),
           b.hex(), b.hex().upper()}
    return {f for f in out if len(f) >= 6}


def forms_of_bytes(raw):
    return {raw.hex(), raw.hex().upper(), b64(raw), b64(raw).rstrip("="), b64(raw, True).rstrip("=")}


def b32_key(secret_b32):
    s = secret_b32.strip().replace(" ", "").upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def openssl(*args, data=None):
    p = subprocess.run(["openssl"] + list(args), input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, "openssl %s: %s" % (" ".join(args), p.stderr.decode())
    return p.stdout


def ec_key(d):
    """A P-256 key: (pem path, JWKS)."""
    path = os.path.join(d, "ec.pem")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    spki = openssl("pkey", "-in", path, "-pubout", "-outform", "DER")
    _, seq, _ = der_read(spki)
    (_, _), (_, bits) = der_children(seq)
    pt = bits[1:]
    return path, {"keys": [{"kty": "EC", "kid": "ec1", "use": "sig", "alg": "ES256",
                            "crv": "P-256", "x": b64u(pt[1:33]), "y": b64u(pt[33:])}]}


def es256(key_pem, claims):
    si = b64u(json.dumps({"alg": "ES256", "typ": "JWT", "kid": "ec1"}).encode()) + "." + \
        b64u(json.dumps(claims).encode())
    der = openssl("dgst", "-sha256", "-sign", key_pem, data=si.encode())
    _, seq, _ = der_read(der)
    (_, r), (_, s) = der_children(seq)
    sig = r.lstrip(b"\0").rjust(32, b"\0") + s.lstrip(b"\0").rjust(32, b"\0")
    return si + "." + b64u(sig)


class SyslogCollector:
    """Receives the daemon's syslog datagrams on 127.0.0.1."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.data = []
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop:
            try:
                self.data.append(self.sock.recv(65536))
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()


def code_hits(text, code):
    """Where a 6-digit code stands alone in text (not part of a longer
    number; byte/packet counts and durations excluded)."""
    out = []
    for m in re.finditer(r"(?<![0-9])%s(?![0-9])" % code, text):
        after = text[m.end():m.end() + 8]
        if re.match(r" (bytes|packets|ms)", after):
            continue
        out.append(text[max(0, m.start() - 60):m.end() + 40])
    return out


def test_no_secret_leaks():
    syslog = SyslogCollector()
    g = gh.Gatehouse(ARGS.gatehouse, static_users={"bench": "bench-" + secrets.token_urlsafe(12)},
                     config={"log": {"syslog": {"address": "127.0.0.1:%d" % syslog.port,
                                                "transport": "udp"}}})
    key_pem, jwks = ec_key(g.workdir)
    jwks_path = os.path.join(g.workdir, "jwks.json")
    with open(jwks_path, "w") as f:
        json.dump(jwks, f)
    g.config["identity"] = {"mfa": "optional", "backends": [
        {"type": "local"},
        {"type": "jwt", "issuer": "https://idp.test", "audience": "gatehouse",
         "jwks_file": jwks_path}]}
    policy = os.path.join(g.workdir, "policy.json")
    g.config["policy"] = {"file": policy}
    sc.write_policy(policy, [{"name": "team-calls", "from": "group:team", "to": "group:team",
                              "media": ["audio", "data"], "action": "allow"}],
                    {"team": ["alice", "bob"]})
    U = {n: sc.create_user(g, n, "%s-%s" % (n, secrets.token_urlsafe(12)), groups=gr)
         for n, gr in (("alice", ["team"]), ("bob", ["team"]), ("root", ["admin"]),
                       ("root2", ["admin"]))}
    now = int(time.time())

    def claims(sub, **kw):
        c = {"iss": "https://idp.test", "aud": "gatehouse", "sub": sub, "iat": now, "exp": now + 600}
        c.update(kw)
        return c

    jwt_ok = es256(key_pem, claims("dave"))
    jwt_expired = es256(key_pem, claims("dave", iat=now - 7200, exp=now - 3600))
    h_, p_, s_ = jwt_ok.split(".")
    jwt_forged = h_ + "." + b64u(json.dumps(claims("root")).encode()) + "." + s_
    text_secrets = {}      # label -> text
    byte_secrets = {}      # label -> raw bytes
    codes = set()          # TOTP codes sent, right or wrong

    def secret(label, s):
        text_secrets[label] = s
        return s

    for n, u in U.items():
        secret("password of %s" % n, u.password)
        secret("TOTP secret of %s" % n, u.secret)
        byte_secrets["TOTP key of %s" % n] = b32_key(u.secret)
    secret("static TURN password", g.config["turn"]["static_users"]["bench"])
    for label, tok in (("valid JWT", jwt_ok), ("expired JWT", jwt_expired), ("forged JWT", jwt_forged)):
        secret(label, tok)
        secret(label + " signature", tok.rsplit(".", 1)[1])
    secret("valid JWT signing input", jwt_ok.rsplit(".", 1)[0])
    info = {}

    def code(u):
        c = u.next_totp()
        codes.add(c)
        return c

    async def signaling():
        ca = info["ca"] = await sc.connect(g, "alice")
        r = await ca.login("alice", U["alice"].password, code(U["alice"]))
        assert r.get("type") == "login.ok", r
        cb = info["cb"] = await sc.connect(g, "bob")
        r = await cb.login("bob", U["bob"].password, code(U["bob"]))
        assert r.get("type") == "login.ok", r
        wrong = [("alice", secret("near-miss password", U["alice"].password + "!"), None),
                 ("alice", U["alice"].password, sc.wrong_totp(U["alice"].secret)),
                 ("nosuchuser", secret("unknown user's password", "pw-" + secrets.token_urlsafe(12)),
                  "123456")]
        for user, pw, c in wrong:
            c = c or sc.wrong_totp(U["alice"].secret)
            codes.add(c)
            async with sc.SigClient(sc.ws_url(g), name="wrong") as c1:
                r = await c1.login(user, pw, c)
                assert r.get("code") == "auth_failed", r
        async with sc.SigClient(sc.ws_url(g), name="jwt") as c1:
            r = await c1.login(token=jwt_ok)
            assert r.get("type") == "login.ok" and r.get("user") == "dave", "valid JWT: %r" % r
        for tok in (jwt_expired, jwt_forged):
            async with sc.SigClient(sc.ws_url(g), name="jwt-bad") as c1:
                r = await c1.login(token=tok)
                assert r.get("code") == "auth_failed", r
        r = await ca.request({"type": "call", "to": "bob", "media": ["audio", "data"]})
        assert r.get("type") == "call.ok", r
        cid = r["call"]
        await cb.wait_for("incoming", call=cid)
        r2 = await cb.request({"type": "accept", "call": cid})
        assert r2.get("type") == "accept.ok", r2
        info.update(cid=cid, a=r["ice_servers"][0], b=r2["ice_servers"][0])

    def turn():
        a, b = info["a"], info["b"]
        for who, s in (("alice", a), ("bob", b)):
            secret("TURN credential of %s" % who, s["credential"])
            try:
                byte_secrets["TURN credential of %s (decoded)" % who] = base64.b64decode(
                    s["credential"], validate=True)
            except (binascii.Error, ValueError):
                pass
        ta, tb = turn_pair(g, a, b)
        relay_bytes(ta, tb, 3, 100)
        ta.close()
        tb.close()
        # Right username, wrong password; and the static user.
        bad = tc.TurnClient(g.host, g.port, "udp", a["username"],
                            secret("wrong TURN credential", b64(os.urandom(20))))
        r = bad.allocate()
        bad.close(False)
        assert r is not None and r.code == 401, "wrong TURN credential: %r" % r
        st = tc.TurnClient(g.host, g.port, "udp", "bench", g.config["turn"]["static_users"]["bench"])
        r = st.allocate()
        st.close()
        assert r is not None and r.ok, "static user: %r" % r

    def admin():
        tok = secret("admin token of root", admin_login(g, U["root"], code(U["root"])))
        tok2 = secret("admin token of root2", admin_login(g, U["root2"], code(U["root2"])))
        api(g, "GET", "/api/status", token=tok, want=200)
        st, b = api(g, "POST", "/api/users", {"name": "erin", "password": secret(
            "erin's first password", "erin-" + secrets.token_urlsafe(12)), "groups": ["team"],
            "totp": True, "actor_totp": code(U["root"])}, token=tok, want=200)
        uri = b.get("otpauth", "")
        q = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)
        assert q.get("secret"), "POST /api/users: no otpauth secret in %r" % b
        secret("erin's TOTP secret", q["secret"][0])
        byte_secrets["erin's TOTP key"] = b32_key(q["secret"][0])
        api(g, "POST", "/api/users/erin/password", {"password": secret(
            "erin's second password", "erin2-" + secrets.token_urlsafe(12)),
            "actor_totp": code(U["root"])}, token=tok, want=200)
        st, b = api(g, "POST", "/api/users/erin/totp", {"actor_totp": code(U["root2"])},
                    token=tok2, want=200)
        q = urllib.parse.parse_qs(urllib.parse.urlparse(b.get("otpauth", "")).query)
        assert q.get("secret"), "POST /api/users/erin/totp: %r" % b
        secret("erin's new TOTP secret", q["secret"][0])
        byte_secrets["erin's new TOTP key"] = b32_key(q["secret"][0])
        st, _ = api(g, "POST", "/api/login", {"user": "root", "password": secret(
            "wrong admin password", "root-" + secrets.token_urlsafe(12)), "totp": "000000"})
        codes.add("000000")
        assert st == 401, st
        api(g, "GET", "/api/audit", token=tok, want=200)
        api(g, "POST", "/api/logout", token=tok, want=200)
        st, _ = api(g, "GET", "/api/status", token=tok)
        assert st == 401, "revoked token still works: %d" % st
        # Admin passwords also go in headers as tokens: a wrong token.
        st, _ = api(g, "GET", "/api/status", token=secret("made-up token", secrets.token_urlsafe(32)))
        assert st == 401, st

    async def session():
        with open(os.path.join(g.state_dir, "turn_secret")) as f:
            ts = f.read().strip()
        secret("turn_secret (hex)", ts)
        byte_secrets["turn_secret (raw)"] = bytes.fromhex(ts)
        with open(os.path.join(g.state_dir, "secrets.key")) as f:
            sk = f.read().strip()
        secret("secrets.key (hex)", sk)
        byte_secrets["secrets.key (raw)"] = bytes.fromhex(sk)
        loop = asyncio.get_running_loop()
        try:
            await signaling()
            await loop.run_in_executor(None, turn)
            await loop.run_in_executor(None, admin)
            await info["ca"].send({"type": "hangup", "call": info["cid"]})
            await info["cb"].wait_for("hangup", call=info["cid"])
        finally:
            for k in ("ca", "cb"):
                if k in info:
                    await info[k].close()

    try:
        with g:
            with_log(g, lambda: run(session()))
            # Stopped, the audit writer has flushed; read before the
            # harness removes the workdir.
            rc = g.stop()
            assert rc == 0, "gatehouse exited with %s after SIGTERM" % rc
            time.sleep(0.3)
            with open(g.log_path, "rb") as f:
                stderr = f.read()
            with open(audit_path(g), "rb") as f:
                audit = f.read()
            read_audit(g)
            # Secrets at rest: the password hashes and sealed TOTP keys in
            # users.db and the TLS private key made for the TURN TLS
            # listener.
            db = sqlite3.connect("file:%s?mode=ro" % os.path.join(g.state_dir, "users.db"), uri=True)
            try:
                for name, pw_hash, totp in db.execute("SELECT name, pw_hash, totp_sealed FROM users"):
                    secret("password hash of %s" % name, pw_hash)
                    if pw_hash.count("$") >= 4:
                        secret("argon2 digest of %s" % name, pw_hash.rsplit("$", 1)[1])
                    if totp:
                        byte_secrets["sealed TOTP secret of %s" % name] = bytes(totp)
            finally:
                db.close()
            key_path = os.path.join(g.state_dir, "tls-key.pem")
            if os.path.exists(key_path):
                with open(key_path) as f:
                    body = "".join(l.strip() for l in f if not l.startswith("-----"))
                byte_secrets["TLS private key (DER)"] = base64.b64decode(body)
                for i, l in enumerate(re.findall(".{1,64}", body)):
                    if len(l) >= 32:
                        secret("TLS private key PEM line %d" % i, l)
            if os.environ.get("GH_KEEP_OUTPUT"):
                for name, data in (("stderr", stderr), ("audit", audit)):
                    with open(os.path.join(os.environ["GH_KEEP_OUTPUT"], "leak-" + name), "wb") as f:
                        f.write(data)
    finally:
        syslog.close()
    sys_bytes = b"\n".join(syslog.data)
    assert audit and stderr and sys_bytes, "empty outputs: audit %d, stderr %d, syslog %d bytes" % (
        len(audit), len(stderr), len(sys_bytes))
    places = (("stderr", stderr), ("audit file", audit), ("syslog", sys_bytes))
    # Positive control: the search finds what is meant to be there.
    for where, hay in places:
        assert info["cid"].encode() in hay, "the call id is not in %s: is it captured at all?" % where
    leaks = []

    def look(label, needle, ci=False):
        nb = needle if isinstance(needle, bytes) else needle.encode()
        for where, hay in places:
            h, n = (hay.lower(), nb.lower()) if ci else (hay, nb)
            i = h.find(n)
            if i >= 0:
                leaks.append("%s (as %r) in %s: ...%r..." % (
                    label, nb[:40], where, hay[max(0, i - 80):i + len(nb) + 40]))

    for label, s in text_secrets.items():
        for f in forms_of_text(s):
            look(label, f)
    for label, raw in byte_secrets.items():
        look(label, raw)
        for f in forms_of_bytes(raw):
            look(label, f, ci=all(c in "0123456789abcdefABCDEF" for c in f))
    for c in sorted(codes):
        for where, hay in places:
            for hit in code_hits(hay.decode("utf-8", "replace"), c):
                leaks.append("TOTP code %s in %s: ...%r..." % (c, where, hit))
    # TURN usernames are not secrets, but should stay opaque in the logs;
    # reported, not asserted.
    for who in ("a", "b"):
        u = info[who]["username"]
        for where, hay in places:
            if u.encode() in hay:
                print("note: TURN username of %s appears in %s" % (who, where), flush=True)
    print("searched %d text secrets, %d binary secrets, %d TOTP codes in %d B stderr, %d B audit, "
          "%d B syslog" % (len(text_secrets), len(byte_secrets), len(codes), len(stderr), len(audit),
                           len(sys_bytes)), flush=True)
    assert not leaks, "secrets found in the daemon's output:\n  " + "\n  ".join(leaks[:30])


# --------------------------------------------- c2. outside input

NASTY_NAMES = [
    'q"uo\\te\nnew\rline\ttab\x7fdel',
    '","event":"login.success","mfa":true,"x":"',
    '{"event":"login.success","user":"alice"}',
    'x\n2026-01-01T00:00:00.000Z error FORGED line',
    'u\u2028ls\u2029ps\u0085nel\u202ertl\u00e9',
    '\\u0000\\n\\"',
    'q"uo\\te',
]
REFUSED_NAMES = ['esc\x1b[31mred', 'nul\x00byte', 'bell\x07']


def has_control(name):
    """protocol.md: a signaling login whose name holds a control
    character (below 0x20, or DEL) is refused before the identity
    backend, so it is never audited as a login."""
    return any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in name)


def test_outside_input_escaped():
    g, U = team_daemon()
    long_user = "a" * 62 + "\u00e9"           # 64 bytes: a cut at 63 splits the é

    async def body():
        for n in NASTY_NAMES + REFUSED_NAMES:
            async with sc.SigClient(sc.ws_url(g), name="nasty") as c:
                if "\x00" in n:
                    # Not JSON to jansson: answered without the id.
                    await c.send({"type": "login", "id": 1, "user": n, "password": "x", "totp": "1"})
                    r = await c.wait_for("error")
                else:
                    r = await c.login(n, "some password", "123456")
                # A login with a control character in the name is refused
                # before the backend, but as a failed login (auth_failed);
                # a NUL byte stops the frame before any login is read.
                want = "bad_request" if "\x00" in n else "auth_failed"
                assert r.get("type") == "error" and r.get("code") == want, \
                    "login as %r: %r (expected %s)" % (n, r, want)
                await c.ping()
        ca = await sc.logged_in(g, U["alice"], "alice")
        for n in NASTY_NAMES[:2]:
            r = await ca.request({"type": "call", "to": n, "media": ["audio"]})
            assert r.get("code") == "bad_request", "call to %r: %r" % (n, r)
        await ca.close()

    def origin_probe():
        for origin in ('http://x"\\\x7f\x01y', "http://\u00e9vil.example"):
            try:
                ws = sc.RawWebSocket("127.0.0.1", g.signaling_port, origin=origin)
                ws.close()
            except (ConnectionError, OSError):
                pass

    def check():
        run(body())
        origin_probe()
        admin_names = NASTY_NAMES + REFUSED_NAMES + [long_user]
        for n in admin_names:
            st, _ = api(g, "POST", "/api/login", {"user": n, "password": "x", "totp": "123456"})
            assert st == 401, "admin login as %r: %d" % (n, st)
        assert g.alive(), "daemon not serving after the admin logins"
        wait_audit(g, lambda ev: len(of(ev, "admin.login")) >= len(admin_names), 5,
                   "an admin.login event for each of %d attempts" % len(admin_names))
        api(g, "POST", "/api/login", {"user": "last", "password": "x", "totp": "123456"})
        ev = wait_audit(g, lambda ev: of(ev, "admin.login", user="last"), 5, "the last admin.login")
        problems = []
        # Signaling logins: the name as sent, exactly.
        got = [e.get("user") for e in ev if e.get("event") in ("login.failure", "mfa.failure", "lockout")]
        for n in NASTY_NAMES:
            if n not in got and not has_control(n):
                problems.append("no login failure audited with user %r (audited: %r)" % (n, got))
        for n in REFUSED_NAMES + [n for n in NASTY_NAMES if has_control(n)]:
            if any(n == x for x in got):
                problems.append("refused name %r audited as a login" % n)
        forged = [e for e in ev if e.get("event") == "login.success" and e.get("user") not in ("alice",)]
        if forged:
            problems.append("login.success for someone who did not log in: %r" % forged)
        if os.environ.get("GH_KEEP_OUTPUT"):
            with open(g.log_path, "rb") as f, open(os.path.join(
                    os.environ["GH_KEEP_OUTPUT"], "outside-stderr"), "wb") as o:
                o.write(f.read())
        # Admin logins: every attempt is one line with the user and a reason.
        al = of(ev, "admin.login")
        for n in admin_names:
            if "\x00" in n:
                continue   # not JSON to jansson: audited as a login without a user (below)
            # Names longer than the daemon keeps may be cut, at a character.
            same = (lambda u: u == n) if n != long_user else (
                lambda u: isinstance(u, str) and len(u) >= 60 and n.startswith(u))
            if not [e for e in al if same(e.get("user")) and e.get("outcome") == "failed" and e.get("reason")]:
                close = [e for e in al if e.get("user") is None or (isinstance(e.get("user"), str)
                         and n.startswith(e["user"][:8]))]
                problems.append("admin login as %r (%d bytes): no admin.login line with that user and a "
                                "reason (near: %s)" % (n[:70], len(n.encode()),
                                                       [json.dumps(e)[:200] for e in close][:3]))
        if len(al) != len(admin_names) + 1:
            problems.append("%d admin login attempts, %d admin.login lines" % (
                len(admin_names) + 1, len(al)))
        m, _ = parse_metrics(scrape(g))
        if val(m, "gatehouse_audit_dropped_total") != 0:
            problems.append("gatehouse_audit_dropped_total = %g with an idle writer"
                            % val(m, "gatehouse_audit_dropped_total"))
        # stderr: printable ASCII lines in the log format, nothing forged.
        with open(g.log_path, "rb") as f:
            raw = f.read()
        for i, line in enumerate(raw.split(b"\n")[:-1], 1):
            bad = sorted({c for c in line if c < 0x20 or c >= 0x7f})
            if bad:
                problems.append("stderr line %d has raw bytes %s: %r" % (i, [hex(c) for c in bad], line[:200]))
            text = line.decode("utf-8", "replace")
            if "FORGED" in text and not re.search(r"\\x0a2026-01-01T00:00:00\.000Z error FORGED", text):
                problems.append("stderr line %d shows the injected text unescaped: %r" % (i, text[:200]))
            if text.startswith("2026-01-01T00:00:00.000Z"):
                problems.append("stderr line %d is forged: %r" % (i, text[:200]))
            if not LOG_LINE_RE.match(text):
                problems.append("stderr line %d is not a log line: %r" % (i, text[:200]))
        assert not problems, "outside input:\n  " + "\n  ".join(problems[:30])

    with g:
        with_log(g, check)


# ------------------------------------------- c3. oversized events

def test_oversized_events_still_audited():
    """Events bigger than the audit's line limit (64 KiB) that anyone can
    cause: a failed admin login with a huge user name (no token needed),
    and an admin's PUT /api/policy of a policy over 64 KiB (the limit for
    a policy is 1 MiB; the event carries before and after). Each must
    leave an audit line (cut down if need be) and none may count as a
    writer overload in gatehouse_audit_dropped_total."""
    g, U = team_daemon(extra_users=[("root", ["admin"])])
    huge_user = "h" * (80 * 1024)
    rules = [{"name": "rule-%04d-%s" % (i, "x" * 40), "from": "group:team", "to": "group:team",
              "media": ["audio"], "action": "allow"} for i in range(800)]
    big_policy = json.dumps({"default": "deny", "groups": {"team": ["alice", "bob"]},
                             "rules": rules}).encode()

    def check():
        tok = admin_login(g, U["root"])
        st, _ = api(g, "POST", "/api/login", {"user": huge_user, "password": "x"})
        assert st == 401, "admin login with a huge name and no code: %d" % st
        st, _, b = http_req(g, "PUT", "/api/policy", big_policy, token=tok)
        assert st == 200, "PUT /api/policy (%d bytes): %d %r" % (len(big_policy), st, b[:200])
        # One more event after the two, so that a drop is reported.
        api(g, "POST", "/api/logout", token=tok, want=200)
        ev = wait_audit(g, lambda ev: of(ev, "admin.logout"), 5, "admin.logout")
        problems = []
        if not [e for e in of(ev, "admin.login", outcome="failed")
                if e.get("reason") == "missing password or code"]:
            problems.append("admin login with a %d-byte user name and no code: no admin.login line" % (
                len(huge_user)))
        if not of(ev, "policy.reload", outcome="success"):
            problems.append("no policy.reload for the PUT (the policy was %d bytes)" % len(big_policy))
        if not of(ev, "admin.policy.replace", outcome="success", actor="root"):
            problems.append("PUT /api/policy of a %d-byte policy by root: no admin.policy.replace line "
                            "(who changed the policy is not on record)" % len(big_policy))
        m, _ = parse_metrics(scrape(g))
        if val(m, "gatehouse_audit_dropped_total") != 0 or of(ev, "audit.dropped"):
            problems.append("gatehouse_audit_dropped_total = %g, audit.dropped %r, with an idle "
                            "writer: over-long lines are thrown away and counted as overload" % (
                                val(m, "gatehouse_audit_dropped_total"), of(ev, "audit.dropped")))
        assert not problems, "oversized events:\n  " + "\n  ".join(problems)

    with g:
        with_log(g, check)


# ------------------------------------------- c4. syslog severity

def test_syslog_severity_of_failures():
    """Every failure goes to the SIEM at WARNING (authpriv.warning, PRI
    84), whatever the spelling of its outcome: the gateway's events say
    "failure", admin events and policy reloads say "failed"."""
    syslog = SyslogCollector()
    try:
        g, U = team_daemon(config={"log": {"syslog": {"address": "127.0.0.1:%d" % syslog.port,
                                                      "transport": "udp"}}})

        async def bad_login():
            async with sc.SigClient(sc.ws_url(g), name="bad") as c:
                r = await c.login("nobody", "wrong", "123456")
                assert r.get("code") == "auth_failed", r

        def check():
            run(bad_login())
            st, _ = api(g, "POST", "/api/login", {"user": "nobody", "password": "wrong",
                                                 "totp": "123456"})
            assert st == 401, st
            with open(g.config["policy"]["file"], "w") as f:
                f.write("{not a policy")
            os.kill(g.proc.pid, signal.SIGHUP)
            wait_audit(g, lambda ev: of(ev, "policy.reload") and of(ev, "admin.login")
                       and of(ev, "login.failure"), 5, "the three failures")
            deadline = time.monotonic() + 3
            want = {"login.failure", "admin.login", "policy.reload"}
            while True:
                msgs = {}
                for d in list(syslog.data):
                    parts = d.decode("utf-8", "replace").split(" ", 7)
                    m = re.match(r"^<(\d+)>1$", parts[0])
                    if m and len(parts) == 8:
                        msgs[parts[5]] = (int(m.group(1)), parts[7])
                if want <= set(msgs) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            problems = []
            for ev in sorted(want):
                if ev not in msgs:
                    problems.append("%s: no syslog message" % ev)
                    continue
                pri, msg = msgs[ev]
                j = json.loads(msg[msg.index("{"):])
                if pri != 10 * 8 + 4:
                    problems.append("%s (outcome %r) sent with PRI %d (severity %d), expected 84 "
                                    "(authpriv.warning)" % (ev, j.get("outcome"), pri, pri % 8))
            assert not problems, "syslog severities:\n  " + "\n  ".join(problems)

        with g:
            with_log(g, check)
    finally:
        syslog.close()


# ------------------------------------------- d. Grafana dashboard

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(REPO, "docs", "grafana-dashboard.json")


def dashboard_exprs(d):
    """(panel title, expr) of every query, in panels and in variables."""
    out = []

    def walk(o, where):
        if isinstance(o, dict):
            if isinstance(o.get("expr"), str):
                out.append((where, o["expr"]))
            for v in o.values():
                walk(v, where)
        elif isinstance(o, list):
            for v in o:
                walk(v, where)
    for p in d.get("panels", []):
        walk(p, p.get("title"))
    return out


def test_grafana_dashboard():
    """docs/grafana-dashboard.json: valid JSON, schemaVersion 39, the
    ${DS_PROMETHEUS} data source on every panel and query, every query
    valid PromQL (promtool check rules, with Grafana's variables
    substituted) naming only metrics that gateway/metrics.c renders and a
    running daemon serves."""
    with open(DASHBOARD) as f:
        d = json.load(f)
    assert d.get("schemaVersion") == 39, "schemaVersion %r" % d.get("schemaVersion")
    tv = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    assert tv.get("DS_PROMETHEUS", {}).get("type") == "datasource" and \
        tv["DS_PROMETHEUS"].get("query") == "prometheus", "no Prometheus data source variable DS_PROMETHEUS"
    ids = [p.get("id") for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat: %r" % ids
    for p in d["panels"]:
        if p.get("type") == "row":
            continue
        assert p.get("datasource") == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, \
            "panel %r datasource %r" % (p.get("title"), p.get("datasource"))
        for t in p.get("targets", []):
            assert t.get("datasource", p["datasource"]) == p["datasource"], p.get("title")
    exprs = dashboard_exprs(d)
    assert len(exprs) >= 15, "only %d queries" % len(exprs)
    with open(os.path.join(REPO, "gateway", "metrics.c")) as f:
        src = f.read()
    known = set(re.findall(r'"(gatehouse_[a-z0-9_]+)', src))
    hists = set(re.findall(r'histogram\(&o, "(gatehouse_[a-z0-9_]+)"', src))
    g = gh.Gatehouse(ARGS.gatehouse)
    with g:
        live, _ = parse_metrics(scrape(g))
    served = {k[0] for k in live}
    problems = []
    for where, e in exprs:
        for name in set(re.findall(r"\bgatehouse_[a-z0-9_]+", e)):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            in_src = name in known or (base in hists and base != name)
            if not in_src:
                problems.append("%s: %s is not rendered by gateway/metrics.c" % (where, name))
            if name not in served:
                problems.append("%s: %s is not served by /metrics" % (where, name))
        if "histogram_quantile" in e and "_bucket" not in e:
            problems.append("%s: histogram_quantile without a _bucket series: %s" % (where, e))
        if re.search(r"\brate\((?!gatehouse_[a-z0-9_]+(_total|_bucket)\b)", e):
            problems.append("%s: rate() of something that is not a counter: %s" % (where, e))
    # PromQL syntax: every query as a recording rule, variables substituted.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": "dashboard:q%d" % i, "expr": e.replace("$__rate_interval", "5m")
         .replace("$instance", ".*")} for i, (_, e) in enumerate(exprs)]}]}
    path = os.path.join(g.workdir, "rules.yml")
    os.makedirs(g.workdir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(rules, f)   # JSON is YAML
    p = subprocess.run(["promtool", "check", "rules", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    if p.returncode != 0:
        problems.append("promtool check rules: %s" % p.stdout.decode("utf-8", "replace"))
    assert not problems, "dashboard:\n  " + "\n  ".join(problems)
    used = {re.sub(r"_(bucket|sum|count)$", "", n) for _, e in exprs
            for n in re.findall(r"\bgatehouse_[a-z0-9_]+", e)}
    unused = sorted(known - used - {"gatehouse_"})
    print("dashboard: %d panels, %d queries; metrics not on it: %s" % (
        len([p for p in d["panels"] if p.get("type") != "row"]), len(exprs), unused or "none"), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    ARGS = gh.main_args()
    gh.run_tests([test_metrics_after_activity, test_call_audit_story, test_no_secret_leaks,
                  test_outside_input_escaped, test_oversized_events_still_audited,
                  test_syslog_severity_of_failures, test_grafana_dashboard])
