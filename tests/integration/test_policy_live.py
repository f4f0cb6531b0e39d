#!/usr/bin/python3
"""Zero trust on live calls: a policy change ends the calls it no longer
allows, at once, and only those.

test_policy_change_ends_live_call (the acceptance test)
    alice->bob and carol->dave are both up with media (aiortc, audio + a
    data channel, relay only, messages flowing both ways). An admin logs
    in to the admin API (password + TOTP) and PUTs a policy that denies
    alice->bob but still allows carol->dave (now by a rule that asks for
    recording). Asserted:
      - alice and bob each receive {"type":"hangup","reason":"policy"}
        within 1 s of the PUT's response (the latency is printed);
      - the relay stops forwarding for that call: data-channel messages
        sent afterwards in either direction never arrive; the daemon log
        shows the call's allocations "removed (call ended)"; the call's
        TURN credentials are refused (Allocate -> 401); GET /api/status
        counts only carol->dave's allocations (0 once that call ends too);
      - carol->dave is untouched: messages keep flowing both ways, no
        hangup, its TURN credentials still work, it is the only call left
        in GET /api/calls, which now shows it "record": true; a new alice->bob call is refused "forbidden";
      - the audit trail has admin.policy.replace and policy.reload
        ("admin API") for the change.

test_policy_reload_stress
    100 reloads alternating policy B (alice->bob, erin->frank denied) and
    policy A (allowed), through all three paths in a seeded random mix:
    PUT /api/policy, rewriting the file (atomic rename, distinct mtime),
    and SIGHUP (file rewritten with its mtime kept, so that only the
    signal reloads it). Reloads come in bursts with a quiet hold after
    each burst. Meanwhile three signaling-only pairs loop call -> incoming
    -> accept -> hangup (alice->bob and erin->frank follow the policy;
    carol->dave is allowed by both and is the control). Asserted:
      - every reload completes (one policy.reload audit event of the right
        reason each; its ts_ms is the moment the policy took effect);
      - the daemon answers a fresh WebSocket ping and GET /api/health
        throughout and after;
      - every decision (call.ok / error forbidden) matches the policy in
        force when it was made, except within +-1.5 s of a reload; and,
        more strictly, except within +-0.25 s of a reload (reload times
        are the daemon's own audit timestamps, so file-watch lag does not
        blur them);
      - every call alive when a B reload took effect ended with hangup
        "policy" on both sides (within 1 s), every policy hangup has such
        a B reload behind it, and the control pair is never refused or
        ended by policy;
      - afterwards GET /api/calls is empty, status counts 0 calls and 0
        allocations, the audit has exactly one successful policy.reload
        per reload (per path), no failed one; the daemon exits 0 on
        SIGTERM (harness).

Traffic only to 127.0.0.1.
"""

import asyncio
import collections
import http.client
import json
import logging
import os
import random
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
import sigclient as sc  # noqa: E402
import turnclient as tc  # noqa: E402
# Shared helpers of the end-to-end call test (importing it only defines
# functions and disables aioice host candidates, which we want too).
from test_call_e2e import (check_ice_servers, check_selected_pair,  # noqa: E402
                           relay_candidates, rtc_config, turn_401)

import aioice.ice  # noqa: E402
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError  # noqa: E402

# TESTING.md: without this aioice also checks from host sockets and a
# "relay only" peer may connect host-to-host.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: []

ARGS = None
HANGUP_LATENCY_MAX_S = 1.0

ADMIN_NAME = "root"
ADMIN_PASSWORD = "correct horse admin 7"


# ------------------------------------------------------------ admin API

class AdminAPI:
    """Blocking JSON client for the admin API (gateway/admin.h)."""

    def __init__(self, g):
        self.g = g
        self.token = None

    def request(self, method, path, body=None, auth=True, timeout=None):
        # A login runs argon2id: seconds under valgrind (gh.slow_factor()).
        if timeout is None:
            timeout = 5.0 * gh.slow_factor()
        conn = http.client.HTTPConnection("127.0.0.1", self.g.admin_port, timeout=timeout)
        headers = {}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = "Bearer " + self.token
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            text = r.read()
        finally:
            conn.close()
        try:
            obj = json.loads(text) if text else None
        except ValueError:
            obj = {"<unparsable>": text[:300]}
        return r.status, obj

    def ok(self, method, path, body=None, timeout=None):
        st, obj = self.request(method, path, body, timeout=timeout)
        assert st == 200, "%s %s answered %d %r" % (method, path, st, obj)
        return obj

    def login(self, user):
        st, obj = self.request("POST", "/api/login", {
            "user": user.name, "password": user.password, "totp": user.next_totp()}, auth=False)
        assert st == 200 and obj and obj.get("token") and obj.get("role") == "admin", \
            "admin login of %s: %d %r" % (user.name, st, obj)
        self.token = obj["token"]
        return obj


def create_admin(g):
    return sc.create_user(g, ADMIN_NAME, ADMIN_PASSWORD, groups=["admin"])


class AuditReader:
    """Reads the daemon's audit trail (state_dir/audit.jsonl) incrementally."""

    def __init__(self, g):
        self.path = os.path.join(g.state_dir, "audit.jsonl")
        self.off = 0
        self.buf = b""

    def new_events(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                chunk = f.read()
        except FileNotFoundError:
            return []
        self.off += len(chunk)
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        out = []
        for l in lines:
            if l.strip():
                try:
                    out.append(json.loads(l))
                except ValueError:
                    out.append({"event": "<unparsable>", "raw": l[:200]})
        return out

    def all_events(self):
        with open(self.path, "rb") as f:
            return [json.loads(l) for l in f.read().splitlines() if l.strip()]


# ------------------------------------------------------------ signaling

class StampedInbox(list):
    """An inbox that stamps every received message with its arrival time
    (wall clock, comparable with the audit trail's ts_ms)."""

    def append(self, obj):
        if isinstance(obj, dict):
            obj["_t"] = time.time()
        super().append(obj)


async def stamped_login(g, user, name=None):
    c = sc.SigClient(sc.ws_url(g), name=name or user.name)
    c.inbox = StampedInbox()
    await c.connect()
    try:
        await c.login_user(user)
    except BaseException:
        await c.close()
        raise
    return c


def policy_doc(rules, groups):
    return {"default": "deny", "groups": groups, "rules": rules}


def write_policy_doc(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)


# ------------------------------------------------------- aiortc calls

class MediaCall:
    def __init__(self, label, cid, x_servers, y_servers):
        self.label = label
        self.cid = cid
        self.x_servers = x_servers
        self.y_servers = y_servers
        self.pcs = []
        self.dc_x = None   # caller's data channel
        self.dc_y = None   # callee's end of it
        self.rx_x = []     # messages the caller received
        self.rx_y = []     # messages the callee received
        self.relays = set()

    def states(self):
        out = []
        for who, pc in zip(("caller", "callee"), self.pcs):
            out.append("%s: pc %s, ice %s" % (who, pc.connectionState, pc.iceConnectionState))
        for who, dc in (("caller dc", self.dc_x), ("callee dc", self.dc_y)):
            out.append("%s: %s" % (who, dc.readyState if dc is not None else None))
        return "; ".join(out)

    def send_both(self, tag, n):
        """n messages each way; returns the messages each side should get.
        A channel that is no longer open counts as a dead transport."""
        to_y = ["%s x->y %d" % (tag, i) for i in range(n)]
        to_x = ["%s y->x %d" % (tag, i) for i in range(n)]
        for dc, msgs in ((self.dc_x, to_y), (self.dc_y, to_x)):
            for m in msgs:
                if dc.readyState != "open":
                    break
                dc.send(m)
        return to_y, to_x

    def got(self, tag):
        return ([m for m in self.rx_y if m.startswith(tag + " ")],
                [m for m in self.rx_x if m.startswith(tag + " ")])

    async def exchange(self, tag, n=10, timeout=10.0):
        """Sends n messages each way and waits until all arrived in order."""
        to_y, to_x = self.send_both(tag, n)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            gy, gx = self.got(tag)
            if gy == to_y and gx == to_x:
                return
            await asyncio.sleep(0.02)
        gy, gx = self.got(tag)
        raise AssertionError("%s: %r messages did not all arrive within %.0f s: callee got %d/%d, "
                             "caller got %d/%d (%s)" % (self.label, tag, timeout, len(gy), n,
                                                         len(gx), n, self.states()))

    async def close(self):
        for pc in self.pcs:
            try:
                await asyncio.wait_for(pc.close(), 5)
            except Exception:
                pass


async def setup_media_call(g, cx, cy, callee, label):
    """cx calls `callee` (logged in on cy) with audio + data; both build
    aiortc peers from the ice_servers Gatehouse handed out; messages flow
    both ways, audio frames arrive, both selected pairs are relay/relay."""
    loop = asyncio.get_running_loop()
    r = await cx.request({"type": "call", "to": callee, "media": ["audio", "data"]})
    assert r.get("type") == "call.ok", "%s: call refused: %r\n%s" % (label, r, cx.describe())
    cid = r["call"]
    x_servers = check_ice_servers(r, g, label + " call.ok")
    await cy.wait_for("incoming", call=cid)
    r2 = await cy.request({"type": "accept", "call": cid})
    assert r2.get("type") == "accept.ok", "%s: accept refused: %r\n%s" % (label, r2, cy.describe())
    y_servers = check_ice_servers(r2, g, label + " accept.ok")
    await cx.wait_for("accepted", call=cid)

    call = MediaCall(label, cid, x_servers, y_servers)
    pc_x = RTCPeerConnection(rtc_config(x_servers))
    pc_y = RTCPeerConnection(rtc_config(y_servers))
    call.pcs = [pc_x, pc_y]
    dc_open = loop.create_future()
    dc_y_fut = loop.create_future()
    remote_track = loop.create_future()

    call.dc_x = pc_x.createDataChannel("chat", ordered=True)
    pc_x.addTrack(AudioStreamTrack())

    @call.dc_x.on("open")
    def _on_open():
        if not dc_open.done():
            dc_open.set_result(True)

    @call.dc_x.on("message")
    def _on_x_msg(msg):
        call.rx_x.append(msg)

    @pc_y.on("datachannel")
    def _on_dc(channel):
        @channel.on("message")
        def _on_y_msg(msg):
            call.rx_y.append(msg)
        if not dc_y_fut.done():
            dc_y_fut.set_result(channel)

    @pc_y.on("track")
    def _on_track(track):
        if track.kind == "audio" and not remote_track.done():
            remote_track.set_result(track)

    await pc_x.setLocalDescription(await pc_x.createOffer())
    offer = pc_x.localDescription.sdp
    assert relay_candidates(offer), "%s: caller gathered no relay candidate" % label
    await cx.send({"type": "sdp", "call": cid, "sdp": {"type": "offer", "sdp": offer}})
    m = await cy.wait_for("sdp", call=cid, timeout=10)
    await pc_y.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"]["sdp"], type="offer"))
    await pc_y.setLocalDescription(await pc_y.createAnswer())
    answer = pc_y.localDescription.sdp
    assert relay_candidates(answer), "%s: callee gathered no relay candidate" % label
    await cy.send({"type": "sdp", "call": cid, "sdp": {"type": "answer", "sdp": answer}})
    m = await cx.wait_for("sdp", call=cid, timeout=10)
    await pc_x.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"]["sdp"], type="answer"))

    await asyncio.wait_for(dc_open, 20)
    call.dc_y = await asyncio.wait_for(dc_y_fut, 10)
    await call.exchange("before", 10, timeout=15)
    track = await asyncio.wait_for(remote_track, 10)
    for i in range(5):
        try:
            frame = await asyncio.wait_for(track.recv(), 5)
        except MediaStreamError:
            raise AssertionError("%s: remote audio ended after %d frames" % (label, i))
        assert frame.samples > 0, "%s: empty audio frame" % label
    check_selected_pair(pc_x, g, label + " caller")
    check_selected_pair(pc_y, g, label + " callee")
    call.relays = relay_candidates(offer) | relay_candidates(answer)
    return call


ALLOC_CREATED_RE = re.compile(r'turn: allocation (\S+) for user "[^"]*"(?: in call (\S+))? from ')
ALLOC_REMOVED_RE = re.compile(r'turn: allocation (\S+) of user "[^"]*" removed \(([^)]*)\)')


def live_allocations(log):
    """relayed address -> call ("" for static users) of every allocation
    the log shows created and not (yet) removed."""
    live = {}
    for l in log.splitlines():
        m = ALLOC_CREATED_RE.search(l)
        if m:
            live[m.group(1)] = m.group(2) or ""
            continue
        m = ALLOC_REMOVED_RE.search(l)
        if m:
            live.pop(m.group(1), None)
    return live


def check_removed_at_end(log, cid, relays):
    """Walks the log in order (relay ports are reused from call to call):
    every allocation of call cid alive when the call ended is logged
    "removed (call ended)" right after, and the per-call summary counts
    exactly those. Returns them."""
    lines = log.splitlines()
    live, created = {}, set()
    end = None
    for i, l in enumerate(lines):
        if "call.ended: call %s " % cid in l:
            end = i
            break
        m = ALLOC_CREATED_RE.search(l)
        if m:
            live[m.group(1)] = m.group(2) or ""
            if m.group(2) == cid:
                created.add(m.group(1))
            continue
        m = ALLOC_REMOVED_RE.search(l)
        if m:
            live.pop(m.group(1), None)
    assert end is not None, "no call.ended line for %s:\n%s" % (cid, gh.tail(log, 40))
    want = {"%s:%d" % a for a in relays}
    assert want <= created, "relays in the SDPs %s, allocations logged in call %s: %s" % (
        sorted(want), cid, sorted(created))
    alive = sorted(a for a, c in live.items() if c == cid)
    assert alive, "no allocation of call %s was alive when it ended" % cid
    removed = set()
    summary = None
    for l in lines[end + 1:end + 1 + 4 * len(alive) + 20]:
        m = ALLOC_REMOVED_RE.search(l)
        if m and m.group(2) == "call ended":
            removed.add(m.group(1))
        m = re.search(r"turn: (\d+) allocations of call %s removed" % re.escape(cid), l)
        if m:
            summary = int(m.group(1))
            break
    assert set(alive) <= removed, "allocations %s of call %s alive at its end, logged removed " \
        "(call ended): %s\n%s" % (alive, cid, sorted(removed), gh.tail(log, 30))
    assert summary == len(alive), "per-call summary for %s says %r, %d were alive" % (
        cid, summary, len(alive))
    print("call %s: allocations alive at its end %s, all removed (call ended)" % (cid, alive), flush=True)
    return alive


def turn_allocate_then_release(g, server):
    """Allocate with a call's credentials; on success releases it."""
    c = tc.TurnClient(g.host, g.port, "udp", server["username"], server["credential"])
    try:
        r = c.allocate()
        return r
    finally:
        c.close()   # Refresh(0) when an allocation was made


# ================================================== acceptance test

async def acceptance_flow(g, api, users, p_deny):
    loop = asyncio.get_running_loop()
    alice, bob, carol, dave = users
    ca = await stamped_login(g, alice)
    cb = await stamped_login(g, bob)
    cc = await stamped_login(g, carol)
    cd = await stamped_login(g, dave)
    calls = []
    try:
        ab = await setup_media_call(g, ca, cb, "bob", "alice->bob")
        calls.append(ab)
        cdc = await setup_media_call(g, cc, cd, "dave", "carol->dave")
        calls.append(cdc)

        listed = await loop.run_in_executor(None, api.ok, "GET", "/api/calls")
        ids = sorted(c["call"] for c in listed["calls"])
        assert ids == sorted([ab.cid, cdc.cid]), "GET /api/calls before the change: %r" % listed
        assert [c["record"] for c in listed["calls"] if c["call"] == cdc.cid] == [False], listed
        st = await loop.run_in_executor(None, api.ok, "GET", "/api/status")
        live = live_allocations(g.log())
        assert st["allocations"] == len(live) and st["calls"] == 2, \
            "status before the change %r, the log shows %d live allocations: %r" % (st, len(live), live)
        # Media still flowing right before the change.
        await ab.exchange("pre-put", 5)

        # ---- the policy change, through the admin API
        t_send = time.time()
        status, body = await loop.run_in_executor(None, api.request, "PUT", "/api/policy", p_deny)
        t_resp = time.time()
        assert status == 200 and body == {"ok": True}, "PUT /api/policy: %d %r" % (status, body)
        print("PUT /api/policy took %.1f ms" % ((t_resp - t_send) * 1000), flush=True)

        lat = {}
        for who, c in (("alice", ca), ("bob", cb)):
            h = await c.wait_for("hangup", timeout=HANGUP_LATENCY_MAX_S + 2.0, call=ab.cid)
            assert h.get("reason") == "policy", "%s got hangup with reason %r: %r" % (
                who, h.get("reason"), h)
            lat[who] = h["_t"] - t_resp
            print("hangup latency %s: %+.1f ms after the PUT's response (%.1f ms after its send)"
                  % (who, lat[who] * 1000, (h["_t"] - t_send) * 1000), flush=True)
        for who, l in lat.items():
            assert l <= HANGUP_LATENCY_MAX_S, "%s received hangup \"policy\" %.3f s after the PUT's " \
                "response (limit %.1f s)" % (who, l, HANGUP_LATENCY_MAX_S)

        # ---- the relay no longer forwards for alice->bob, and still does
        # for carol->dave (checked over the same window).
        ab.send_both("after", 10)
        await cdc.exchange("after", 10, timeout=10)
        await asyncio.sleep(2.5)
        gy, gx = ab.got("after")
        assert not gy and not gx, "alice->bob messages still relayed after the policy hangup: " \
            "bob got %r, alice got %r (%s)" % (gy, gx, ab.states())
        print("alice->bob after the hangup: nothing relayed (%s)" % ab.states(), flush=True)

        log = g.log()
        check_removed_at_end(log, ab.cid, ab.relays)
        assert re.search(r"call\.ended: call %s alice -> bob ended: policy" % re.escape(ab.cid), log), \
            "no 'ended: policy' line for %s in the daemon log" % ab.cid
        live = live_allocations(log)
        assert ab.cid not in live.values(), "allocations of the ended call still live: %r" % live
        cd_live = [a for a, c in live.items() if c == cdc.cid]
        assert cd_live, "carol->dave has no live allocation left: %r" % live

        for who, servers in (("alice", ab.x_servers), ("bob", ab.y_servers)):
            resp = await loop.run_in_executor(None, turn_401, g, servers[0])
            assert resp is not None and resp.code == 401, \
                "%s's credentials of the ended call: Allocate answered %r, expected 401" % (who, resp)
        # Zero trust is not a blunt instrument: the allowed call's
        # credentials still work.
        resp = await loop.run_in_executor(None, turn_allocate_then_release, g, cdc.x_servers[0])
        assert resp is not None and resp.ok, "carol's credentials (call still allowed): Allocate " \
            "answered %r" % resp

        st = await loop.run_in_executor(None, api.ok, "GET", "/api/status")
        live = live_allocations(g.log())
        assert st["calls"] == 1, "status after the change: %r" % st
        assert st["allocations"] == len(live) and set(live.values()) == {cdc.cid}, \
            "status counts %d allocations; live by the log: %r (only carol->dave's expected)" % (
                st["allocations"], live)
        print("status after the change: %d call, %d allocations (all carol->dave's)"
              % (st["calls"], st["allocations"]), flush=True)
        listed = await loop.run_in_executor(None, api.ok, "GET", "/api/calls")
        assert [c["call"] for c in listed["calls"]] == [cdc.cid], \
            "GET /api/calls after the change: %r" % listed
        # The new ops rule asks for recording: the live call shows it.
        assert listed["calls"][0]["record"] is True, "carol->dave after the change: %r" % listed

        r = await ca.request({"type": "call", "to": "bob", "media": ["audio"]})
        assert r.get("type") == "error" and r.get("code") == "forbidden", \
            "a new alice->bob call under the new policy: %r" % r

        # carol->dave: no hangup, still flowing.
        for c in (cc, cd):
            hs = [m for m in c.inbox if m.get("type") == "hangup"]
            assert not hs, "%s received %r" % (c.name, hs)
        await cdc.exchange("still", 10, timeout=10)

        # Audit of the change.
        ev = AuditReader(g).all_events()
        rep = [e for e in ev if e.get("event") == "admin.policy.replace"]
        rel = [e for e in ev if e.get("event") == "policy.reload"]
        assert len(rep) == 1 and rep[0].get("outcome") == "success" and rep[0].get("actor") == ADMIN_NAME \
            and rep[0].get("after") == p_deny, "admin.policy.replace events: %r" % rep
        assert len(rel) == 1 and rel[0].get("outcome") == "success" and rel[0].get("reason") == "admin API", \
            "policy.reload events: %r" % rel

        # Finally carol hangs up: nothing left on the relay.
        r = await cc.request({"type": "hangup", "call": cdc.cid})
        assert r.get("type") == "hangup.ok", "carol's hangup: %r" % r
        h = await cd.wait_for("hangup", call=cdc.cid)
        assert h.get("reason") == "hangup", "dave: %r" % h
        st = await loop.run_in_executor(None, api.ok, "GET", "/api/status")
        assert st["calls"] == 0 and st["allocations"] == 0, "status after every call ended: %r" % st
        check_removed_at_end(g.log(), cdc.cid, cdc.relays)
        await sc.fresh_ping(g)
    finally:
        for c in calls:
            await c.close()
        for c in (ca, cb, cc, cd):
            await c.close()


def test_policy_change_ends_live_call():
    g = gh.Gatehouse(ARGS.gatehouse)
    path = os.path.join(g.workdir, "policy.json")
    g.config["policy"] = {"file": path}
    groups = {"team": ["alice", "bob"], "ops": ["carol", "dave"]}
    ops = {"name": "ops-calls", "from": "group:ops", "to": "group:ops",
           "media": ["audio", "data"], "action": "allow"}
    p_allow = policy_doc([{"name": "team-calls", "from": "group:team", "to": "group:team",
                           "media": ["audio", "video", "data"], "action": "allow"}, ops], groups)
    # Deny wins over allow: the allow rule stays, a deny rule is added.
    p_deny = policy_doc([{"name": "team-calls", "from": "group:team", "to": "group:team",
                          "media": ["audio", "video", "data"], "action": "allow"},
                         {"name": "team-frozen", "from": "user:alice", "to": "user:bob",
                          "media": ["audio", "video", "data", "screen"], "action": "deny"},
                         dict(ops, record=True)], groups)
    write_policy_doc(path, p_allow)
    users = [sc.create_user(g, n, "correct horse " + n, groups=[gr])
             for n, gr in (("alice", "team"), ("bob", "team"), ("carol", "ops"), ("dave", "ops"))]
    admin = create_admin(g)
    with g:
        api = AdminAPI(g)
        api.login(admin)
        try:
            asyncio.run(asyncio.wait_for(acceptance_flow(g, api, users, p_deny), 90))
        except asyncio.TimeoutError:
            print("daemon log tail:\n%s" % gh.tail(g.log(), 60))
            raise AssertionError("the acceptance flow did not complete within 90 s")
        except AssertionError:
            print("daemon log tail:\n%s" % gh.tail(g.log(), 60))
            raise
        assert g.alive(), "daemon not alive; log tail:\n%s" % gh.tail(g.log())


# ====================================================== reload stress

N_RELOADS = 100
ROUND_SIZES = [9, 11] * 5          # bursts; odd sizes so holds alternate B, A, B, ...
HOLD_S = 4.0                       # quiet time after each burst
TOLERANCE_S = 1.5                  # the brief's window around each reload
STRICT_S = 0.25                    # reload times are the daemon's own
# A call counts as alive when B took effect if its call.ok arrived 50 ms
# before the reload's audit timestamp (taken right after the hub switched)
# and its client hangup left after it.
ALIVE_BEFORE_S = 0.05
ALIVE_AFTER_S = 0.005
STRESS_DEADLINE_S = 110
SALES = [("alice", "bob"), ("erin", "frank")]
CONTROL = ("carol", "dave")


class Reload:
    def __init__(self, i, target, path):
        self.i, self.target, self.path = i, target, path
        self.t_start = self.t_done = self.t_effect = None


class Decision:
    def __init__(self, pair, t0, t1, allowed, cid=None):
        self.pair, self.t0, self.t1, self.allowed, self.cid = pair, t0, t1, allowed, cid


class CallRec:
    def __init__(self, pair, cid, t_sent, t_ok):
        self.pair, self.cid, self.t_sent, self.t_ok = pair, cid, t_sent, t_ok
        self.t_up = None            # accept.ok received
        self.client_end = None      # (who, t_sent) of the client's hangup, when it went through
        self.hangups = {}           # side -> (reason, t) of hangups received
        self.notes = []


class StressState:
    def __init__(self):
        self.reloads = []
        self.decisions = []
        self.calls = []
        self.problems = []          # unexpected protocol answers
        self.rate_limited = 0       # calls refused for the callers' pace
        self.monitor_fail = []
        self.monitor_max = {"ping": 0.0, "health": 0.0}
        self.monitor_n = 0
        self.stop = False


def _hangup_pred(cid):
    return lambda m: m.get("type") == "hangup" and m.get("call") == cid


def _take(c, pred):
    for i, m in enumerate(c.inbox):
        if pred(m):
            return c.inbox.pop(i)
    return None


async def collect_hangup(c, cid, timeout):
    try:
        return await c.wait(_hangup_pred(cid), timeout, "hangup of %s" % cid)
    except AssertionError:
        if c.closed:
            raise
        return None


async def pair_loop(st, pair, x, y, rng, deadline):
    """x calls y's user again and again: call -> incoming -> accept ->
    hold -> hangup. Every decision and call is recorded."""
    caller, callee = pair
    n = 0
    while not st.stop and time.time() < deadline and n < 600:
        n += 1
        t0 = time.time()
        r = await x.request({"type": "call", "to": callee, "media": ["audio"]}, timeout=5)
        t1 = time.time()
        if r.get("type") == "error" and r.get("code") == "forbidden":
            st.decisions.append(Decision(pair, t0, t1, False))
            await asyncio.sleep(rng.uniform(0.05, 0.15))
            continue
        if r.get("type") == "error" and r.get("code") == "rate_limited":
            # Faster than a user may place calls (30 a minute, protocol.md
            # "Limits"): one comes back every 2 s. Allowed by the policy,
            # but no call to judge.
            st.rate_limited += 1
            await asyncio.sleep(2.0)
            continue
        if r.get("type") != "call.ok":
            st.problems.append("%s->%s: call answered %r" % (caller, callee, r))
            await asyncio.sleep(0.2)
            continue
        cid = r["call"]
        st.decisions.append(Decision(pair, t0, t1, True, cid))
        rec = CallRec(pair, cid, t0, t1)
        st.calls.append(rec)
        m = await y.wait(lambda m: m.get("call") == cid and m.get("type") in ("incoming", "hangup"),
                         5, "incoming or hangup of %s" % cid)
        if m["type"] == "incoming":
            m = _take(y, _hangup_pred(cid)) or m
        if m["type"] == "incoming":
            r2 = await y.request({"type": "accept", "call": cid})
            if r2.get("type") == "accept.ok":
                rec.t_up = time.time()
            else:
                rec.notes.append("accept answered %r" % r2)
        else:
            rec.hangups["callee"] = (m.get("reason"), m["_t"])
        # Hold, unless the server ends the call first.
        h = await collect_hangup(x, cid, rng.uniform(0.1, 0.8) if rec.t_up else 1.5)
        if h is not None:
            rec.hangups["caller"] = (h.get("reason"), h["_t"])
        else:
            who, c, other = (("caller", x, y) if n % 2 else ("callee", y, x))
            h = _take(c, _hangup_pred(cid))
            if h is not None:
                rec.hangups[who] = (h.get("reason"), h["_t"])
            else:
                t_hs = time.time()
                r3 = await c.request({"type": "hangup", "call": cid})
                if r3.get("type") == "hangup.ok":
                    rec.client_end = (who, t_hs)
                else:
                    rec.notes.append("%s's hangup answered %r" % (who, r3))
        # Whatever ended it, each side that did not hang up itself gets
        # exactly one hangup.
        for side, c in (("caller", x), ("callee", y)):
            if side in rec.hangups or (rec.client_end and rec.client_end[0] == side):
                continue
            h = await collect_hangup(c, cid, 3.0)
            if h is not None:
                rec.hangups[side] = (h.get("reason"), h["_t"])
        # Drop what piled up (pushed contacts, "accepted"); keep messages
        # of this call for the record.
        for side, c in (("caller", x), ("callee", y)):
            for mm in c.inbox:
                if mm.get("call") == cid and mm.get("type") not in ("accepted",):
                    rec.notes.append("%s: extra %r" % (side, {k: v for k, v in mm.items() if k != "_t"}))
            c.inbox[:] = [mm for mm in c.inbox
                          if mm.get("type") not in ("contacts", "accepted") and mm.get("call") != cid]


async def monitor_loop(st, g, api):
    loop = asyncio.get_running_loop()
    while not st.stop:
        st.monitor_n += 1
        t = time.monotonic()
        try:
            await sc.fresh_ping(g, timeout=3.0)
            st.monitor_max["ping"] = max(st.monitor_max["ping"], time.monotonic() - t)
        except Exception as e:
            st.monitor_fail.append("ping at %.3f: %r" % (time.time(), e))
        t = time.monotonic()
        try:
            s, body = await loop.run_in_executor(None, api.request, "GET", "/api/health", None,
                                                 False, 3.0)
            st.monitor_max["health"] = max(st.monitor_max["health"], time.monotonic() - t)
            if s != 200 or body != {"status": "ok"}:
                st.monitor_fail.append("health at %.3f: %d %r" % (time.time(), s, body))
        except Exception as e:
            st.monitor_fail.append("health at %.3f: %r" % (time.time(), e))
        if g.proc.poll() is not None:
            st.monitor_fail.append("daemon exited with %s" % g.proc.returncode)
            return
        await asyncio.sleep(0.4)


def _atomic_write(path, doc, mtime_ns):
    tmp = path + ".test-tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
    os.utime(tmp, ns=(mtime_ns, mtime_ns))
    os.rename(tmp, path)


async def wait_reload_event(audit, reason, timeout):
    """The next audit events up to and including a policy.reload; returns
    (the event, other policy.reload events seen on the way)."""
    deadline = time.monotonic() + timeout
    extra = []
    while time.monotonic() < deadline:
        for e in audit.new_events():
            if e.get("event") != "policy.reload":
                continue
            if e.get("reason") == reason and e.get("outcome") == "success":
                return e, extra
            extra.append(e)
        await asyncio.sleep(0.01)
    return None, extra


async def do_reload(st, g, api, audit, path, rl, doc):
    loop = asyncio.get_running_loop()
    rl.t_start = time.time()
    if rl.path == "put":
        status, body = await loop.run_in_executor(None, api.request, "PUT", "/api/policy", doc)
        assert status == 200 and body == {"ok": True}, "reload %d: PUT answered %d %r" % (rl.i, status, body)
        ev, extra = await wait_reload_event(audit, "admin API", 1.0)
    elif rl.path == "file":
        cur = os.stat(path).st_mtime_ns
        _atomic_write(path, doc, max(time.time_ns(), cur + 1000000))
        ev, extra = await wait_reload_event(audit, "file changed", 3.5)
    else:
        # Keep the mtime the daemon has seen: only the signal reloads.
        cur = os.stat(path).st_mtime_ns
        _atomic_write(path, doc, cur)
        os.kill(g.proc.pid, signal.SIGHUP)
        ev, extra = await wait_reload_event(audit, "SIGHUP", 2.0)
    rl.t_done = time.time()
    assert not extra, "reload %d (%s): unexpected policy.reload events %r" % (rl.i, rl.path, extra)
    assert ev is not None, "reload %d (%s to %s): no successful policy.reload event within the wait " \
        "(daemon alive: %s); log tail:\n%s" % (rl.i, rl.path, rl.target, g.proc.poll() is None,
                                               gh.tail(g.log(), 20))
    rl.t_effect = ev["ts_ms"] / 1000.0
    st.reloads.append(rl)


async def reload_driver(st, g, api, path, docs, rng):
    audit = AuditReader(g)
    audit.new_events()
    paths = ["put"] * 34 + ["file"] * 33 + ["hup"] * 33
    rng.shuffle(paths)
    i = 0
    for size in ROUND_SIZES:
        for k in range(size):
            target = "B" if i % 2 == 0 else "A"
            await do_reload(st, g, api, audit, path, Reload(i, target, paths[i]), docs[target])
            i += 1
            if k < size - 1:
                await asyncio.sleep(rng.uniform(0.0, 0.25))
        await asyncio.sleep(HOLD_S)
    assert i == N_RELOADS


def in_force(reloads, t):
    cur = "A"
    for rl in reloads:
        if rl.t_effect <= t:
            cur = rl.target
    return cur


def check_stress(st):
    """All the assertions on the recorded timeline; returns a summary."""
    errors = []
    reloads = st.reloads
    effects = [rl.t_effect for rl in reloads]
    b_effects = [rl.t_effect for rl in reloads if rl.target == "B"]
    n = collections.Counter()

    def near(t0, t1, w):
        return any(t0 - w <= e <= t1 + w for e in effects)

    for d in st.decisions:
        if d.pair == CONTROL:
            if not d.allowed:
                errors.append("control %s->%s refused at %.3f" % (d.pair + (d.t0,)))
            continue
        want = in_force(reloads, d.t0) == "A"
        if not near(d.t0, d.t1, TOLERANCE_S):
            n["tolerant-checked-" + ("allow" if want else "deny")] += 1
            if d.allowed != want:
                errors.append("%s->%s %s at %.3f-%.3f while policy %s was in force (no reload within %.1f s)"
                              % (d.pair[0], d.pair[1], "allowed" if d.allowed else "forbidden",
                                 d.t0, d.t1, in_force(reloads, d.t0), TOLERANCE_S))
        else:
            n["in-window"] += 1
        if not near(d.t0, d.t1, STRICT_S):
            n["strict-checked"] += 1
            if d.allowed != want:
                errors.append("STRICT: %s->%s %s at %.3f-%.3f while policy %s was in force (no reload "
                              "within %.2f s)" % (d.pair[0], d.pair[1], "allowed" if d.allowed else
                                                  "forbidden", d.t0, d.t1, in_force(reloads, d.t0),
                                                  STRICT_S))

    latencies = []
    for c in st.calls:
        reasons = {side: r for side, (r, _) in c.hangups.items()}
        policy_sides = [s for s, r in reasons.items() if r == "policy"]
        if c.notes and not policy_sides:
            errors.append("call %s %s: %s" % (c.cid, c.pair, c.notes))
        if c.pair == CONTROL:
            if policy_sides or c.client_end is None:
                errors.append("control call %s ended without a client hangup: hangups %r notes %r"
                              % (c.cid, c.hangups, c.notes))
            continue
        if c.client_end:
            end_limit = c.client_end[1]
        elif c.hangups:
            # Ended by the server: the reload that did it came before.
            end_limit = min(t for _, t in c.hangups.values()) + ALIVE_AFTER_S
        else:
            end_limit = float("inf")
        must = [e for e in b_effects if c.t_ok < e - ALIVE_BEFORE_S and e + ALIVE_AFTER_S < end_limit]
        if must:
            e = must[0]
            for side in ("caller", "callee"):
                r = c.hangups.get(side)
                if r is None and c.client_end and c.client_end[0] == side:
                    r = "none: hung up itself at %.3f" % c.client_end[1]
                if r is None or r[0] != "policy":
                    errors.append("call %s %s->%s was alive when B took effect at %.3f but %s got %r "
                                  "(client end %r, notes %r)" % (c.cid, c.pair[0], c.pair[1], e, side, r,
                                                                 c.client_end, c.notes))
                else:
                    latencies.append(r[1] - e)
                    # (The hangup leaves before the audit line is written,
                    # so it may arrive a little before e.)
                    if r[1] - e > HANGUP_LATENCY_MAX_S or r[1] < e - 0.5:
                        errors.append("call %s: %s's policy hangup at %.3f, B took effect at %.3f"
                                      % (c.cid, side, r[1], e))
            n["ended-by-B"] += 1
        elif policy_sides:
            # Both sides learn it, nobody hung up first, and a B reload
            # lies between the decision and the hangup.
            if c.client_end is not None or sorted(policy_sides) != ["callee", "caller"]:
                errors.append("call %s %s: policy hangup on %s only, client end %r, hangups %r"
                              % (c.cid, c.pair, policy_sides, c.client_end, c.hangups))
            t_h = min(c.hangups[s][1] for s in policy_sides)
            if not any(c.t_sent - STRICT_S <= e <= t_h + STRICT_S for e in b_effects):
                errors.append("call %s %s ended with reason policy at %.3f, with no B reload behind it"
                              % (c.cid, c.pair, t_h))
            n["policy-ended-in-window"] += 1
        else:
            for side in ("caller", "callee"):
                if c.client_end and c.client_end[0] == side:
                    continue
                r = c.hangups.get(side)
                if r is None or r[0] != "hangup":
                    errors.append("call %s %s: %s got %r after %r hung up (notes %r)"
                                  % (c.cid, c.pair, side, r, c.client_end, c.notes))
            n["client-ended"] += 1
    return errors, n, latencies


async def stress_flow(g, api, users, path, docs, seed):
    loop = asyncio.get_running_loop()
    st = StressState()
    rng = random.Random(seed)
    clients = {}
    try:
        for u in users:
            clients[u.name] = await stamped_login(g, u)
        deadline = time.time() + STRESS_DEADLINE_S
        loops = [asyncio.ensure_future(pair_loop(st, p, clients[p[0]], clients[p[1]],
                                                 random.Random(seed + k), deadline))
                 for k, p in enumerate(SALES + [CONTROL])]
        mon = asyncio.ensure_future(monitor_loop(st, g, api))
        t_begin = time.time()
        try:
            await reload_driver(st, g, api, path, docs, rng)
        finally:
            st.stop = True
            done = await asyncio.gather(*loops, return_exceptions=True)
            await asyncio.gather(mon, return_exceptions=True)
        elapsed = time.time() - t_begin
        for p, res in zip(SALES + [CONTROL], done):
            if isinstance(res, BaseException):
                raise AssertionError("client loop %s->%s failed: %s: %s" % (p[0], p[1], type(res).__name__,
                                                                            str(res)[:2000]))
        by_path = collections.Counter(rl.path for rl in st.reloads)
        print("stress: %d reloads in %.1f s (%s); %d decisions, %d calls, %d rate limited; monitor %d "
              "rounds, max ping %.0f ms, max health %.0f ms"
              % (len(st.reloads), elapsed, dict(by_path), len(st.decisions), len(st.calls),
                 st.rate_limited, st.monitor_n, st.monitor_max["ping"] * 1000,
                 st.monitor_max["health"] * 1000), flush=True)
        lags = [rl.t_effect - rl.t_start for rl in st.reloads if rl.path == "file"]
        print("file-watch lag: max %.0f ms, mean %.0f ms" % (max(lags) * 1000, sum(lags) / len(lags) * 1000),
              flush=True)
        assert len(st.reloads) == N_RELOADS, "only %d reloads completed" % len(st.reloads)
        assert not st.monitor_fail, "the daemon stopped answering:\n  " + "\n  ".join(st.monitor_fail[:20])
        assert not st.problems, "unexpected answers:\n  " + "\n  ".join(st.problems[:20])
        errors, n, latencies = check_stress(st)
        print("decisions: %s" % dict(n), flush=True)
        if latencies:
            print("policy hangup latency after B took effect: max %.1f ms, mean %.1f ms over %d hangups"
                  % (max(latencies) * 1000, sum(latencies) / len(latencies) * 1000, len(latencies)),
                  flush=True)
        assert not errors, "%d wrong outcomes:\n  %s" % (len(errors), "\n  ".join(errors[:30]))
        # The check must have had something to check.
        assert n["tolerant-checked-allow"] >= 5 and n["tolerant-checked-deny"] >= 5, \
            "too few decisions outside the reload windows to judge: %r" % dict(n)
        assert n["ended-by-B"] >= 5, "too few calls were alive when B took effect: %r" % dict(n)

        # ---- after: everyone has hung up
        listed = await loop.run_in_executor(None, api.ok, "GET", "/api/calls")
        assert listed == {"calls": []}, "GET /api/calls after all hung up: %r" % listed
        stt = await loop.run_in_executor(None, api.ok, "GET", "/api/status")
        assert stt["calls"] == 0 and stt["allocations"] == 0, "status after the stress: %r" % stt
        pol = await loop.run_in_executor(None, api.ok, "GET", "/api/policy")
        assert pol.get("policy") == docs["A"], "policy in force at the end: %r" % pol
        # The final policy is A: alice may call bob again.
        c = clients["alice"]
        r = await c.request({"type": "call", "to": "bob", "media": ["audio"]})
        assert r.get("type") == "call.ok", "alice->bob under the final policy A: %r" % r
        r = await c.request({"type": "hangup", "call": r["call"]})
        assert r.get("type") == "hangup.ok", "%r" % r
        await sc.fresh_ping(g)
        s, body = await loop.run_in_executor(None, api.request, "GET", "/api/health", None, False)
        assert s == 200 and body == {"status": "ok"}, "health after: %d %r" % (s, body)

        ev = AuditReader(g).all_events()
        rel = [e for e in ev if e.get("event") == "policy.reload"]
        failed = [e for e in rel if e.get("outcome") != "success"]
        assert not failed, "failed reloads in the audit: %r" % failed[:5]
        got = collections.Counter(e.get("reason") for e in rel)
        want = {"admin API": by_path["put"], "file changed": by_path["file"], "SIGHUP": by_path["hup"]}
        assert dict(got) == want, "policy.reload events by reason %r, reloads done %r" % (dict(got), want)
        rep = [e for e in ev if e.get("event") == "admin.policy.replace" and e.get("outcome") == "success"]
        assert len(rep) == by_path["put"], "%d admin.policy.replace events for %d PUTs" % (
            len(rep), by_path["put"])
        reloaded_lines = len(re.findall(r"policy reloaded from ", g.log()))
        assert reloaded_lines == N_RELOADS, "%d 'policy reloaded' log lines for %d reloads" % (
            reloaded_lines, N_RELOADS)
    finally:
        for c in clients.values():
            await c.close()


def test_policy_reload_stress():
    g = gh.Gatehouse(ARGS.gatehouse, config={"log": {"level": "info"}})
    path = os.path.join(g.workdir, "policy.json")
    g.config["policy"] = {"file": path}
    groups = {"sales": ["alice", "bob", "erin", "frank"], "ops": ["carol", "dave"]}
    ops = {"name": "ops-audio", "from": "group:ops", "to": "group:ops", "media": ["audio"],
           "action": "allow"}
    docs = {
        "A": policy_doc([{"name": "sales-audio", "from": "group:sales", "to": "group:sales",
                          "media": ["audio"], "action": "allow"}, ops], groups),
        "B": policy_doc([{"name": "sales-audio", "from": "group:sales", "to": "group:sales",
                          "media": ["audio"], "action": "allow"},
                         {"name": "sales-frozen", "from": "group:sales", "to": "group:sales",
                          "media": ["audio", "video", "data", "screen"], "action": "deny"},
                         dict(ops, record=True)], groups),
    }
    write_policy_doc(path, docs["A"])
    users = [sc.create_user(g, n, "correct horse " + n, groups=["sales" if n in groups["sales"] else "ops"])
             for n in ("alice", "bob", "erin", "frank", "carol", "dave")]
    admin = create_admin(g)
    seed = int(os.environ.get("GH_SEED", "20240611"))
    print("seed %d (GH_SEED)" % seed, flush=True)
    with g:
        api = AdminAPI(g)
        api.login(admin)
        try:
            asyncio.run(asyncio.wait_for(stress_flow(g, api, users, path, docs, seed), 150))
        except asyncio.TimeoutError:
            print("daemon log tail:\n%s" % gh.tail(g.log(), 60))
            raise AssertionError("the stress did not complete within 150 s")
        except AssertionError:
            print("daemon log tail:\n%s" % gh.tail(g.log(), 30))
            raise
        assert g.alive(), "daemon not alive; log tail:\n%s" % gh.tail(g.log())


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    ARGS = gh.main_args()
    gh.run_tests([test_policy_change_ends_live_call, test_policy_reload_stress])
