#!/usr/bin/python3
"""The acceptance test: a whole call through Gatehouse with real peers.

alice and bob log in over the signaling WebSocket with password + TOTP;
alice calls bob (audio + data), bob accepts; each builds an aiortc peer
from the ice_servers Gatehouse handed out (relay only: aioice host
gathering is disabled, TESTING.md); the offer and the answer travel
through Gatehouse. Asserted:
  - every candidate line either side RECEIVED from Gatehouse is a UDP
    relay candidate on 127.0.0.1 in the relay window, the relays received
    are exactly the relays the sender gathered, and the SDP carries no
    other address (c=/o= 0.0.0.0, m=/a=rtcp port 9, no raddr/rport that
    names the sender's own transport address);
  - 20 data-channel messages arrive in order; the audio track yields
    frames; both selected ICE pairs are relay on the Gatehouse relay;
  - the relay read both DTLS handshakes: each certificate matched the
    fingerprint its sender signaled (audit media.dtls);
  - alice hangs up -> bob gets hangup "hangup"; the call's TURN
    credentials are then refused (401) and the daemon log shows the call's
    allocations removed by the call's end (not by the clients).
"""

import asyncio
import logging
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
import adminclient as ac  # noqa: E402
import sigclient as sc  # noqa: E402
import turnclient as tc  # noqa: E402

import aioice.ice  # noqa: E402
from aiortc import (RTCConfiguration, RTCIceServer, RTCPeerConnection,  # noqa: E402
                    RTCSessionDescription)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError  # noqa: E402

# TESTING.md: without this aioice also checks from host sockets and a
# "relay only" peer may connect host-to-host.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: []

ARGS = None
OVERALL_TIMEOUT_S = 60
MESSAGES = 20
AUDIO_FRAMES = 10

CANDIDATE_RE = re.compile(
    r"^a=candidate:(\S+) (\d+) (\S+) (\d+) (\S+) (\d+) typ (\S+)(.*)$")
IPV4_RE = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")


def relay_candidates(sdp):
    """(ip, port) of every relay candidate line of an SDP."""
    out = set()
    for l in sdp.splitlines():
        m = CANDIDATE_RE.match(l.strip())
        if m and m.group(7) == "relay":
            out.add((m.group(5), int(m.group(6))))
    return out


def related_addresses(sdp):
    """(raddr, rport) of every candidate line that has them."""
    out = []
    for l in sdp.splitlines():
        m = CANDIDATE_RE.match(l.strip())
        if not m:
            continue
        ext = m.group(8).split()
        d = dict(zip(ext[0::2], ext[1::2]))
        if "raddr" in d:
            out.append((d["raddr"], int(d.get("rport", "0")), l.strip()))
    return out


def check_received_sdp(sdp, g, who, sent_sdp, leaks):
    """Hard checks on an SDP received from Gatehouse; soft findings
    (addresses outside candidate lines, related addresses) go to leaks."""
    lines = [l.strip() for l in sdp.splitlines()]
    cand_lines = [l for l in lines if l.startswith("a=candidate")]
    assert cand_lines, "%s received an SDP without candidates:\n%s" % (who, sdp)
    for l in cand_lines:
        m = CANDIDATE_RE.match(l)
        assert m, "%s: unparsable candidate line %r" % (who, l)
        _, _, transport, _, ip, port, typ, _ = m.groups()
        port = int(port)
        assert typ == "relay", "%s received a typ %s candidate: %r" % (who, typ, l)
        assert ip == "127.0.0.1", "%s received a relay candidate on %s: %r" % (who, ip, l)
        assert g.port_min <= port <= g.port_max, \
            "%s received relay port %d outside the relay window %d-%d: %r" % (
                who, port, g.port_min, g.port_max, l)
        assert transport.lower() == "udp", "%s received a %s candidate: %r" % (who, transport, l)
    # Nothing legitimate was dropped: the sender's relays all arrive.
    sent, got = relay_candidates(sent_sdp), relay_candidates(sdp)
    assert got == sent, "%s: relay candidates sent %s but received %s" % (who, sorted(sent), sorted(got))
    for l in lines:
        if l.startswith("c="):
            assert l.split()[-1] == "0.0.0.0", "%s: c= line not rewritten: %r" % (who, l)
        if l.startswith("o="):
            assert l.split()[-1] == "0.0.0.0", "%s: o= line not rewritten: %r" % (who, l)
        if l.startswith("m="):
            assert l.split()[1] == "9", "%s: m= port not rewritten to 9: %r" % (who, l)
        if l.startswith("a=rtcp:"):
            assert l.split()[0] == "a=rtcp:9", "%s: a=rtcp port not rewritten to 9: %r" % (who, l)
    # Any dotted address outside the candidate connection-address field.
    for l in lines:
        rest = l
        m = CANDIDATE_RE.match(l)
        if m:
            rest = m.group(8)
        for ip in IPV4_RE.findall(rest):
            if ip != "0.0.0.0":
                leaks.append("%s received address %s outside a candidate's "
                             "connection-address: %r" % (who, ip, l))
    # raddr/rport name the sender's own (host/reflexive) transport address.
    for raddr, rport, l in related_addresses(sdp):
        if raddr not in ("0.0.0.0", "::") or rport != 0:
            leaks.append("%s received the sender's related address %s:%d: %r"
                         % (who, raddr, rport, l))


def ice_connections(pc):
    conns = {}
    if pc.sctp is not None:
        c = pc.sctp.transport.transport._connection
        conns[id(c)] = c
    for t in pc.getTransceivers():
        if t.receiver.transport is not None:
            c = t.receiver.transport.transport._connection
            conns[id(c)] = c
    return list(conns.values())


def check_selected_pair(pc, g, who):
    for conn in ice_connections(pc):
        nominated = dict(conn._nominated)
        assert nominated, "%s: no nominated ICE pair" % who
        for component, pair in nominated.items():
            lc, rc = pair.local_candidate, pair.remote_candidate
            print("%s: selected pair component %d: %s %s:%d -> %s %s:%d" % (
                who, component, lc.type, lc.host, lc.port, rc.type, rc.host, rc.port), flush=True)
            assert lc.type == "relay" and rc.type == "relay", \
                "%s: selected pair is %s/%s, not relay/relay" % (who, lc.type, rc.type)
            assert lc.host == "127.0.0.1" and g.port_min <= lc.port <= g.port_max, \
                "%s: local candidate %s:%d not on the Gatehouse relay" % (who, lc.host, lc.port)
            assert rc.host == "127.0.0.1" and g.port_min <= rc.port <= g.port_max, \
                "%s: remote candidate %s:%d not on the Gatehouse relay" % (who, rc.host, rc.port)


def check_call_allocations_removed(log, cid, relays):
    """Every allocation the log shows created in call cid and still alive
    when the call ended is logged as removed with reason "call ended", and
    the per-call summary counts exactly those. (aiortc itself releases the
    transports that BUNDLE makes redundant, with a Refresh of 0.)"""
    lines = log.splitlines()
    created = []
    for l in lines:
        m = re.search(r"turn: allocation (\S+) for user \"[^\"]*\" in call %s " % re.escape(cid), l)
        if m:
            created.append(m.group(1))
    assert created, "the daemon log shows no allocation in call %s:\n%s" % (cid, gh.tail(log, 40))
    want = {"%s:%d" % a for a in relays}
    assert want <= set(created), "relays in the SDPs %s, allocations logged in the call %s" % (
        sorted(want), created)
    end = [i for i, l in enumerate(lines) if "call.ended: call %s " % cid in l]
    assert end, "no call.ended line for %s:\n%s" % (cid, gh.tail(log, 40))
    before = lines[:end[0]]
    alive = [a for a in created
             if not any(re.search(r"turn: allocation %s of user .* removed" % re.escape(a), l)
                        for l in before)]
    assert alive, "no allocation of call %s was alive at hangup" % cid
    for a in alive:
        assert any(re.search(r"turn: allocation %s of user .* removed \(call ended\)" % re.escape(a), l)
                   for l in lines[end[0]:]), \
            "allocation %s (alive at hangup) not logged as removed by the call's end:\n%s" % (
                a, gh.tail(log, 40))
    m = re.search(r"turn: (\d+) allocations of call %s removed" % re.escape(cid), log)
    assert m, "no 'allocations of call %s removed' line in the daemon log:\n%s" % (cid, gh.tail(log, 40))
    assert int(m.group(1)) == len(alive), "%s, but %d were alive: %s" % (m.group(0), len(alive), alive)
    print("call %s: allocations %s; removed at the call's end: %s" % (cid, created, alive), flush=True)


def rtc_config(ice_servers):
    return RTCConfiguration(iceServers=[
        RTCIceServer(urls=s["urls"], username=s["username"], credential=s["credential"])
        for s in ice_servers])


def check_ice_servers(reply, g, who):
    assert reply.get("ice_transport_policy") == "relay", "%s: %r" % (who, reply)
    servers = reply.get("ice_servers")
    assert isinstance(servers, list) and servers, "%s: no ice_servers: %r" % (who, reply)
    urls = servers[0].get("urls")
    assert isinstance(urls, list) and urls, "%s: no urls: %r" % (who, servers)
    want = "turn:127.0.0.1:%d?transport=udp" % g.port
    assert urls[0] == want, "%s: first URL %r, expected %r" % (who, urls[0], want)
    assert servers[0].get("username") and servers[0].get("credential"), "%s: %r" % (who, servers)
    return servers


def turn_401(g, server):
    """Allocate with the call's credentials: returns the final response."""
    c = tc.TurnClient(g.host, g.port, "udp", server["username"], server["credential"])
    try:
        return c.allocate()
    finally:
        c.close()


def check_dtls_inspected(g, cid):
    """The relay read both peers' DTLS 1.2 handshakes (docs/turn.md, "Media
    inspection"): each certificate matched its sender's a=fingerprint, and
    the DTLS server's hello named an SRTP profile."""
    deadline = time.monotonic() + 5
    while True:
        ev = [e for e in ac.read_audit(g) if e.get("event") == "media.dtls" and
              e.get("call") == cid]
        certs = {e.get("user"): e.get("fingerprint") for e in ev if e.get("check") == "certificate"}
        hellos = [e for e in ev if e.get("check") == "server_hello"]
        if (len(certs) == 2 and hellos) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert certs == {"alice": "match", "bob": "match"}, "media.dtls certificate checks: %r" % ev
    assert len(hellos) == 1 and hellos[0].get("version") == "1.2" and \
        hellos[0].get("srtp_profile", "").startswith("SRTP_") and \
        hellos[0].get("cipher_suite", "").startswith("TLS_ECDHE_") and \
        hellos[0].get("outcome") == "success", "media.dtls server_hello: %r" % ev
    offers = [e for e in ev if e.get("check") == "client_hello"]
    assert len(offers) == 1 and hellos[0]["srtp_profile"] in offers[0].get("srtp_profiles", []) and \
        offers[0].get("user") != hellos[0].get("user"), "media.dtls client_hello: %r" % ev


async def call_flow(g, alice, bob):
    loop = asyncio.get_running_loop()
    leaks = []
    ca = await sc.logged_in(g, alice, "alice")
    cb = await sc.logged_in(g, bob, "bob")
    pc_a = pc_b = None
    try:
        r = await ca.request({"type": "call", "to": "bob", "media": ["audio", "data"]})
        assert r.get("type") == "call.ok", "call refused: %r\n%s" % (r, ca.describe())
        cid = r["call"]
        a_servers = check_ice_servers(r, g, "call.ok")
        assert r.get("media") == ["audio", "data"] and r.get("record") is False, \
            "call.ok media/record: %r" % r
        inc = await cb.wait_for("incoming", call=cid)
        assert inc.get("from") == "alice" and sorted(inc.get("media", [])) == ["audio", "data"], \
            "incoming: %r" % inc
        r2 = await cb.request({"type": "accept", "call": cid})
        assert r2.get("type") == "accept.ok" and r2.get("call") == cid, \
            "accept refused: %r\n%s" % (r2, cb.describe())
        b_servers = check_ice_servers(r2, g, "accept.ok")
        assert r2.get("media") == ["audio", "data"] and r2.get("record") is False, \
            "accept.ok media/record: %r" % r2
        assert b_servers[0]["username"] != a_servers[0]["username"], \
            "caller and callee got the same TURN username"
        await ca.wait_for("accepted", call=cid)

        pc_a = RTCPeerConnection(rtc_config(a_servers))
        pc_b = RTCPeerConnection(rtc_config(b_servers))
        received = []
        all_received = loop.create_future()
        remote_track = loop.create_future()
        dc_open = loop.create_future()

        dc = pc_a.createDataChannel("chat", ordered=True)
        pc_a.addTrack(AudioStreamTrack())

        @dc.on("open")
        def _on_open():
            if not dc_open.done():
                dc_open.set_result(True)

        @pc_b.on("datachannel")
        def _on_dc(channel):
            @channel.on("message")
            def _on_msg(msg):
                received.append(msg)
                if len(received) == MESSAGES and not all_received.done():
                    all_received.set_result(True)

        @pc_b.on("track")
        def _on_track(track):
            if track.kind == "audio" and not remote_track.done():
                remote_track.set_result(track)

        # Offer: alice -> Gatehouse -> bob.
        await pc_a.setLocalDescription(await pc_a.createOffer())
        offer_sent = pc_a.localDescription.sdp
        assert relay_candidates(offer_sent), "alice gathered no relay candidate:\n%s" % offer_sent
        await ca.send({"type": "sdp", "call": cid, "sdp": {"type": "offer", "sdp": offer_sent}})
        m = await cb.wait_for("sdp", call=cid, timeout=10)
        assert m["sdp"]["type"] == "offer", "bob got %r" % m
        offer_rcvd = m["sdp"]["sdp"]
        check_received_sdp(offer_rcvd, g, "bob", offer_sent, leaks)
        await pc_b.setRemoteDescription(RTCSessionDescription(sdp=offer_rcvd, type="offer"))

        # Answer: bob -> Gatehouse -> alice.
        await pc_b.setLocalDescription(await pc_b.createAnswer())
        answer_sent = pc_b.localDescription.sdp
        assert relay_candidates(answer_sent), "bob gathered no relay candidate:\n%s" % answer_sent
        await cb.send({"type": "sdp", "call": cid, "sdp": {"type": "answer", "sdp": answer_sent}})
        m = await ca.wait_for("sdp", call=cid, timeout=10)
        assert m["sdp"]["type"] == "answer", "alice got %r" % m
        answer_rcvd = m["sdp"]["sdp"]
        check_received_sdp(answer_rcvd, g, "alice", answer_sent, leaks)
        await pc_a.setRemoteDescription(RTCSessionDescription(sdp=answer_rcvd, type="answer"))

        await asyncio.wait_for(dc_open, 20)
        for i in range(MESSAGES):
            dc.send("message %d" % i)
        await asyncio.wait_for(all_received, 15)
        want = ["message %d" % i for i in range(MESSAGES)]
        assert received == want, "data channel messages out of order or wrong: %r" % received

        track = await asyncio.wait_for(remote_track, 10)
        for i in range(AUDIO_FRAMES):
            try:
                frame = await asyncio.wait_for(track.recv(), 5)
            except MediaStreamError:
                raise AssertionError("remote audio track ended after %d frames" % i)
            assert frame.samples > 0, "empty audio frame"

        check_selected_pair(pc_a, g, "alice")
        check_selected_pair(pc_b, g, "bob")
        relays = relay_candidates(offer_sent) | relay_candidates(answer_sent)

        # Hang up while the peers still hold their allocations: the daemon
        # must tear them down itself.
        await ca.send({"type": "hangup", "call": cid})
        h = await cb.wait_for("hangup", call=cid)
        assert h.get("reason") == "hangup", "bob got hangup with reason %r" % h.get("reason")
        await ca.expect_nothing(0.3, lambda m: m.get("type") == "hangup")

        for who, servers in (("alice", a_servers), ("bob", b_servers)):
            resp = await loop.run_in_executor(None, turn_401, g, servers[0])
            assert resp is not None and resp.code == 401, \
                "%s's call credentials after hangup: Allocate answered %r, expected 401" % (who, resp)

        check_call_allocations_removed(g.log(), cid, relays)
        check_dtls_inspected(g, cid)
        await sc.fresh_ping(g)
        # Findings about addresses in the forwarded SDP are asserted last
        # so that they do not hide the outcome of everything above.
        assert not leaks, "SDP forwarded by Gatehouse leaks addresses:\n  " + "\n  ".join(leaks)
    finally:
        for pc in (pc_a, pc_b):
            if pc is not None:
                try:
                    await asyncio.wait_for(pc.close(), 5)
                except Exception:
                    pass
        await ca.close()
        await cb.close()


def test_call_e2e():
    g = gh.Gatehouse(ARGS.gatehouse)
    policy = os.path.join(g.workdir, "policy.json")
    g.config["policy"] = {"file": policy}
    sc.write_policy(policy, [{"name": "team-calls", "from": "group:team", "to": "group:team",
                              "media": ["audio", "video", "data"], "action": "allow"}],
                    {"team": ["alice", "bob"]})
    # Users are added before the start, through the same config (state_dir).
    alice = sc.create_user(g, "alice", "correct horse alice", groups=["team"])
    bob = sc.create_user(g, "bob", "correct horse bob", groups=["team"])
    with g:
        try:
            asyncio.run(asyncio.wait_for(call_flow(g, alice, bob), OVERALL_TIMEOUT_S))
        except asyncio.TimeoutError:
            print("daemon log tail:\n%s" % gh.tail(g.log(), 60))
            raise AssertionError("the call did not complete within %d s" % OVERALL_TIMEOUT_S)
        except AssertionError:
            print("daemon log tail:\n%s" % gh.tail(g.log(), 60))
            raise
        assert g.alive(), "daemon not alive after the call; log tail:\n%s" % gh.tail(g.log())


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    ARGS = gh.main_args()
    gh.run_tests([test_call_e2e])
