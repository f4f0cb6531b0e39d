#!/usr/bin/python3
"""Two aiortc peers in one process, connected relay-to-relay through
Gatehouse's TURN server: a data channel and an audio track.

aioice would also check from host sockets and could connect host-to-host,
proving nothing about the relay; host gathering is therefore disabled by
replacing aioice.ice.get_host_addresses (TESTING.md), and the selected ICE
pair is asserted to be relayed on both sides."""

import asyncio
import logging
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402

import aioice.ice  # noqa: E402
from aiortc import (RTCConfiguration, RTCIceServer, RTCPeerConnection,  # noqa: E402
                    RTCSessionDescription)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError  # noqa: E402

ARGS = None
OVERALL_TIMEOUT_S = 30
MESSAGES = 20
AUDIO_FRAMES = 10

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: []

CANDIDATE_RE = re.compile(
    r"^a=candidate:(\S+) (\d+) (\S+) (\d+) (\S+) (\d+) typ (\S+)(.*)$")


def check_sdp_candidates(sdp, g, who):
    """Every candidate line is a UDP relay candidate on 127.0.0.1 with a
    port in the daemon's relay window; returns the (ip, port) seen."""
    lines = [l.strip() for l in sdp.splitlines() if l.startswith("a=candidate:")]
    assert lines, "%s SDP has no candidates:\n%s" % (who, sdp)
    seen = set()
    for l in lines:
        m = CANDIDATE_RE.match(l)
        assert m, "%s: unparsable candidate line %r" % (who, l)
        _, _, transport, _, ip, port, typ, _ = m.groups()
        port = int(port)
        assert typ == "relay", "%s: candidate is typ %s, not relay: %r" % (who, typ, l)
        assert ip == "127.0.0.1", "%s: relay candidate on %s, expected 127.0.0.1: %r" % (who, ip, l)
        assert g.port_min <= port <= g.port_max, "%s: relay port %d outside the window %d-%d: %r" % (
            who, port, g.port_min, g.port_max, l)
        assert transport.lower() == "udp", "%s: candidate transport %s: %r" % (who, transport, l)
        seen.add((ip, port))
    return seen


def ice_connection_of(pc):
    """The aioice Connection under the peer connection's (bundled) data
    channel transport: RTCSctpTransport -> RTCDtlsTransport ->
    RTCIceTransport -> aioice.Connection."""
    return pc.sctp.transport.transport._connection


def check_selected_pair(pc, g, who):
    conns = {id(ice_connection_of(pc)): ice_connection_of(pc)}
    for t in pc.getTransceivers():
        if t.receiver.transport is not None:
            c = t.receiver.transport.transport._connection
            conns[id(c)] = c
    for conn in conns.values():
        nominated = dict(conn._nominated)
        assert nominated, "%s: no nominated ICE pair" % who
        for component, pair in nominated.items():
            lc, rc = pair.local_candidate, pair.remote_candidate
            print("%s: selected pair component %d: %s %s:%d -> %s %s:%d" % (
                who, component, lc.type, lc.host, lc.port, rc.type, rc.host, rc.port), flush=True)
            assert lc.type == "relay", "%s: selected local candidate is %s, not relay" % (who, lc.type)
            assert lc.host == "127.0.0.1" and g.port_min <= lc.port <= g.port_max, \
                "%s: selected local candidate %s:%d is not on the Gatehouse relay" % (who, lc.host, lc.port)
            assert rc.host == "127.0.0.1" and g.port_min <= rc.port <= g.port_max, \
                "%s: selected remote candidate %s:%d is not on the Gatehouse relay" % (who, rc.host, rc.port)


async def call(g, transport):
    ice = RTCConfiguration(iceServers=[RTCIceServer(
        urls="turn:%s:%d?transport=%s" % (g.host, g.port, transport),
        username="bench", credential="secret")])
    pc1 = RTCPeerConnection(ice)
    pc2 = RTCPeerConnection(ice)
    loop = asyncio.get_running_loop()
    received = []
    all_received = loop.create_future()
    remote_track = loop.create_future()
    dc1_open = loop.create_future()
    try:
        dc1 = pc1.createDataChannel("chat", ordered=True)
        pc1.addTrack(AudioStreamTrack())

        @dc1.on("open")
        def _on_open():
            if not dc1_open.done():
                dc1_open.set_result(True)

        @pc2.on("datachannel")
        def _on_dc(channel):
            @channel.on("message")
            def _on_msg(msg):
                received.append(msg)
                if len(received) == MESSAGES and not all_received.done():
                    all_received.set_result(True)

        @pc2.on("track")
        def _on_track(track):
            if track.kind == "audio" and not remote_track.done():
                remote_track.set_result(track)

        await pc1.setLocalDescription(await pc1.createOffer())
        offer = pc1.localDescription
        check_sdp_candidates(offer.sdp, g, "offer")
        await pc2.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type=offer.type))
        await pc2.setLocalDescription(await pc2.createAnswer())
        answer = pc2.localDescription
        check_sdp_candidates(answer.sdp, g, "answer")
        await pc1.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type=answer.type))

        await dc1_open
        for i in range(MESSAGES):
            dc1.send("message %d" % i)
        await all_received
        want = ["message %d" % i for i in range(MESSAGES)]
        assert received == want, "data channel messages out of order or wrong: %r" % received

        track = await remote_track
        for i in range(AUDIO_FRAMES):
            try:
                frame = await track.recv()
            except MediaStreamError:
                raise AssertionError("remote audio track ended after %d frames" % i)
            assert frame.samples > 0, "empty audio frame"

        assert pc1.iceConnectionState == "completed" or pc1.iceConnectionState == "connected", \
            "offerer ICE state %s" % pc1.iceConnectionState
        check_selected_pair(pc1, g, "offerer")
        check_selected_pair(pc2, g, "answerer")
    finally:
        await pc1.close()
        await pc2.close()


def _run_call(transport):
    with gh.Gatehouse(ARGS.gatehouse) as g:
        try:
            asyncio.run(asyncio.wait_for(call(g, transport), OVERALL_TIMEOUT_S))
        except asyncio.TimeoutError:
            print("daemon log tail:\n%s" % gh.tail(g.log(), 60))
            raise AssertionError("call through the relay did not complete within %d s" % OVERALL_TIMEOUT_S)
        except AssertionError:
            print("daemon log tail:\n%s" % gh.tail(g.log(), 60))
            raise
        assert g.alive(), "daemon not alive after the call; log tail:\n%s" % gh.tail(g.log())


def test_aiortc_relay_udp():
    _run_call("udp")


def test_aiortc_relay_tcp():
    # Same call with TURN over TCP to the server (relay still UDP).
    _run_call("tcp")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    ARGS = gh.main_args()
    gh.run_tests([test_aiortc_relay_udp, test_aiortc_relay_tcp])
