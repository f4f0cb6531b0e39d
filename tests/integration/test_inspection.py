#!/usr/bin/python3
"""Media inspection on the relay (docs/turn.md, "Media inspection").

test_certificate_must_be_signaled
    alice calls bob; each holds a UDP allocation with the call's
    credentials and a permission for the other's. alice's allocation
    sends DTLS handshake datagrams built here (a ServerHello with use_srtp
    and a Certificate of a real certificate made by openssl):
      - before alice has signaled any SDP: dropped, `media.dtls`
        "unsignaled" audited, the call goes on;
      - RTP-looking and STUN datagrams pass; bytes that are none of
        WebRTC's protocols pass too (turn.media_only is off by default)
        and are counted in gatehouse_relayed_packets_unclassified_total;
      - after alice's SDP names the certificate's sha-256 fingerprint:
        delivered to bob; `media.dtls` server_hello (version 1.2, the SRTP
        profile) and certificate "match" audited; the metric counts it;
      - a forged certificate behind a trailing junk byte, a bad record
        type, a connection-ID record, or as a second Certificate, a
        certificate split over datagrams, two ServerHellos in a datagram,
        half a ServerHello: dropped, the call goes on;
      - bob's answer names one certificate and his allocation presents
        another: not delivered, `media.dtls` "mismatch" audited with
        outcome failure, both sides get hangup "inspection", the call's
        allocations are gone, and call.traffic counts the unclassified
        datagram.

test_unprotected_handshake_ends_call
    A ServerHello choosing an SRTP profile that does not encrypt, a NULL
    or anonymous cipher suite, or DTLS 1.0 is dropped; the call ends
    (hangup "inspection"), media.dtls names what was refused.

test_media_only
    With turn.media_only, bytes that are no WebRTC protocol and DTLS that
    does not parse are cut and counted, RTP passes, and a static user's
    allocation is not classified.

Traffic goes to 127.0.0.1 only.
"""

import asyncio
import hashlib
import logging
import os
import re
import struct
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import adminclient as ac  # noqa: E402
import gh  # noqa: E402
import sigclient as sc  # noqa: E402
import turnclient as tc  # noqa: E402

ARGS = None
USERS = ("alice", "bob", "carol", "dave")


def password_of(name):
    return "inspect-pw-" + name


def make_daemon(**turn):
    g = gh.Gatehouse(ARGS.gatehouse)
    policy = os.path.join(g.workdir, "policy.json")
    g.config["policy"] = {"file": policy}
    g.config.setdefault("turn", {}).update(turn)
    g.config["turn"]["static_users"] = {"tool": "tool-secret"}
    sc.write_policy(policy, [{"name": "team", "from": "group:team", "to": "group:team",
                              "media": ["audio", "data"], "action": "allow"}],
                    {"team": list(USERS)})
    sc.write_config(g)
    users = {n: sc.create_user(g, n, password_of(n)) for n in USERS}
    return g, users


def der_cert(g, name):
    """A fresh self-signed EC certificate, DER."""
    key, pem = os.path.join(g.workdir, name + ".key"), os.path.join(g.workdir, name + ".pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + name, "-days", "1",
                    "-keyout", key, "-out", pem], check=True, capture_output=True, timeout=30)
    return subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"], check=True,
                          capture_output=True, timeout=30).stdout


def fingerprint(der):
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())


def u24(n):
    return struct.pack("!I", n)[1:]


def record(seq, msg_type, msg_seq, body, off=0, total=None):
    """One DTLS 1.2 epoch-0 handshake record holding body, the fragment at
    off of a message of total bytes (default: the whole message)."""
    total = len(body) if total is None else total
    hs = bytes([msg_type]) + u24(total) + struct.pack("!H", msg_seq) + u24(off) + \
        u24(len(body)) + body
    return b"\x16\xfe\xfd" + b"\x00\x00" + struct.pack("!Q", seq)[2:] + \
        struct.pack("!H", len(hs)) + hs


def server_hello(profile=0x0007, suite=0xc02b, version=0xfefd):
    """A ServerHello body: DTLS 1.2, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    use_srtp with SRTP_AEAD_AES_128_GCM, unless told otherwise."""
    use_srtp = struct.pack("!HHHHB", 14, 5, 2, profile, 0)
    return struct.pack("!H", version) + os.urandom(32) + b"\x00" + \
        struct.pack("!H", suite) + b"\x00" + struct.pack("!H", len(use_srtp)) + use_srtp


def server_flight(der, **hello_kw):
    """ServerHello and Certificate, one datagram, as a DTLS server sends its
    flight; the Certificate in two records, as OpenSSL splits it."""
    hello = server_hello(**hello_kw)
    cert = u24(len(der) + 3) + u24(len(der)) + der
    half = len(cert) // 2
    return record(0, 2, 1, hello) + record(1, 11, 2, cert[:half], 0, len(cert)) + \
        record(2, 11, 2, cert[half:], half, len(cert))


def sdp(kind, der):
    return ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
            "a=ice-ufrag:Ab12\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
            "a=fingerprint:sha-256 %s\r\na=setup:%s\r\na=mid:0\r\na=rtcp-mux\r\n"
            "a=rtpmap:111 opus/48000/2\r\n" % (fingerprint(der),
                                               "actpass" if kind == "offer" else "active"))


def metric(g, name):
    """Sum of a counter's samples whose line starts with name."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % g.admin_port, timeout=5) as r:
        text = r.read().decode()
    vals = [float(l.split()[-1]) for l in text.splitlines() if l.startswith(name)]
    assert vals, "no %s in /metrics" % name
    return sum(vals)


def wait_audit(g, pred, what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        ev = [e for e in ac.read_audit(g) if pred(e)]
        if ev:
            return ev
        assert time.monotonic() < deadline, "no %s in the audit file" % what
        time.sleep(0.05)


def serve(g, body):
    """Runs body() against the started daemon; its log tail on failure."""
    with g:
        gh.with_log(g, lambda: asyncio.run(asyncio.wait_for(body(), 60)))


async def relayed(src, dst, payload, timeout=1.0):
    """Sends payload from src's allocation to dst's; what dst got, or None."""
    src.send_indication(dst.relayed, payload)
    got = await sc.in_thread(dst.recv_data, timeout)
    return None if got is None else got[2]


def test_certificate_must_be_signaled():
    g, users = make_daemon()
    cert_a, cert_b, cert_x = der_cert(g, "a"), der_cert(g, "b"), der_cert(g, "x")

    async def body():
        ca, cb, cid, ta, tb = await sc.call_with_allocations(g, users, "alice", "bob")
        try:
            flight = server_flight(cert_a)
            # Nothing signaled yet: dropped, the call goes on.
            assert await relayed(ta, tb, flight) is None, "a certificate nobody signaled was relayed"
            ev = wait_audit(g, lambda e: e.get("event") == "media.dtls" and
                            e.get("fingerprint") == "unsignaled", "unsignaled media.dtls")
            assert ev[0].get("user") == "alice" and ev[0].get("call") == cid and \
                ev[0].get("outcome") == "failure", ev
            await ca.expect_nothing(0.3, lambda m: m.get("type") == "hangup")

            # Media and ICE pass; other bytes pass too (turn.media_only is
            # off by default) but are counted.
            rtp = b"\x80\x6f" + os.urandom(30)
            assert await relayed(ta, tb, rtp) == rtp, "RTP was not relayed"
            stun = tc.Message(tc.BINDING, tc.REQUEST).encode()
            assert await relayed(ta, tb, stun) == stun, "a STUN request was not relayed"
            before = metric(g, "gatehouse_relayed_packets_unclassified_total")
            assert await relayed(ta, tb, b"hello bob") == b"hello bob", \
                "with media_only off, other bytes are relayed"
            assert await relayed(ta, tb, b"12345") == b"12345", \
                "bytes in the DTLS range that hold no handshake record are relayed"
            after = metric(g, "gatehouse_relayed_packets_unclassified_total")
            assert after == before + 2, "unclassified %r -> %r" % (before, after)

            # alice signals her certificate: the same flight now passes.
            await ca.send({"type": "sdp", "call": cid, "sdp": {"type": "offer",
                                                               "sdp": sdp("offer", cert_a)}})
            await cb.wait_for("sdp", call=cid)
            assert await relayed(ta, tb, flight) == flight, "a signaled certificate was dropped"
            ev = wait_audit(g, lambda e: e.get("event") == "media.dtls" and
                            e.get("fingerprint") == "match", "match media.dtls")
            assert ev[0].get("user") == "alice" and ev[0].get("outcome") == "success", ev
            hello = wait_audit(g, lambda e: e.get("event") == "media.dtls" and
                               e.get("check") == "server_hello", "server_hello media.dtls")
            assert hello[0].get("version") == "1.2" and \
                hello[0].get("srtp_profile") == "SRTP_AEAD_AES_128_GCM" and \
                hello[0].get("cipher_suite") == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" and \
                hello[0].get("certificate") == "in the clear" and \
                hello[0].get("outcome") == "success", hello
            assert metric(g, 'gatehouse_dtls_certificates_total{fingerprint="match"}') == 1

            # Ways to slip a certificate past the check are dropped, even
            # with the signaled certificate: a malformed datagram (a
            # receiver may act on the records before the fault), records
            # behind a connection ID, a certificate split over datagrams,
            # two hellos (a receiver takes one, the relay would check the
            # other), a ServerHello split over datagrams.
            forged = server_flight(cert_x)
            hello_whole = server_hello(suite=0xc006)
            hello_half = hello_whole[:len(hello_whole) // 2]
            for what, dgram in (("a trailing junk byte", forged + b"\x00"),
                                ("a record first byte 27", forged + b"\x1b\xfe\xfd"),
                                ("a tls12_cid record first", b"\x19\xfe\xfd\x00\x07" +
                                 b"\x00" * 6 + b"\x00\x05abcde" + forged),
                                ("two Certificates", flight + record(3, 11, 2, u24(len(cert_x) + 3) +
                                                                     u24(len(cert_x)) + cert_x)),
                                ("two ServerHellos", record(0, 2, 1, server_hello(suite=0xc006)) +
                                 flight),
                                ("half a ServerHello", record(0, 2, 1, hello_half, 0,
                                                              len(hello_whole)))):
                assert await relayed(ta, tb, dgram) is None, "relayed with %s" % what
            await ca.expect_nothing(0.2, lambda m: m.get("type") == "hangup")
            cert = u24(len(cert_a) + 3) + u24(len(cert_a)) + cert_a
            half = len(cert) // 2
            assert await relayed(ta, tb, record(4, 11, 2, cert[:half], 0, len(cert))) is None, \
                "the first half of a certificate split over datagrams was relayed"
            ev = wait_audit(g, lambda e: e.get("event") == "media.dtls" and
                            e.get("fingerprint") == "split", "split media.dtls")
            assert ev[0].get("outcome") == "failure", ev
            assert metric(g, 'gatehouse_dtls_certificates_total{fingerprint="split"}') == 1

            # bob signals one certificate and presents another.
            await cb.send({"type": "sdp", "call": cid, "sdp": {"type": "answer",
                                                               "sdp": sdp("answer", cert_b)}})
            await ca.wait_for("sdp", call=cid)
            bad = server_flight(cert_x)
            assert await relayed(tb, ta, bad) is None, "a certificate bob did not signal was relayed"
            for c, who in ((ca, "alice"), (cb, "bob")):
                h = await c.wait_for("hangup", call=cid)
                assert h.get("reason") == "inspection", "%s got %r" % (who, h)
            ev = wait_audit(g, lambda e: e.get("event") == "media.dtls" and
                            e.get("fingerprint") == "mismatch", "mismatch media.dtls")
            assert ev[0].get("user") == "bob" and ev[0].get("outcome") == "failure", ev
            assert metric(g, 'gatehouse_dtls_certificates_total{fingerprint="mismatch"}') == 1
            ended = wait_audit(g, lambda e: e.get("event") == "call.ended" and
                               e.get("call") == cid, "call.ended")
            assert ended[0].get("reason") == "inspection", ended
            traffic = wait_audit(g, lambda e: e.get("event") == "call.traffic" and
                                 e.get("call") == cid, "call.traffic")
            # "hello bob", "12345" and the five malformed datagrams (the
            # half ServerHello is read, and dropped as split).
            assert traffic[0].get("packets_unclassified") == 7, traffic
            for t in (ta, tb):
                r = await sc.in_thread(t.refresh, 600)
                assert r is not None and not r.ok, "an allocation outlived the call: %r" % r
                t.relayed = None
            assert re.search(r"call %s: bob presented a DTLS certificate that matches no "
                             r"fingerprint" % cid, g.log()), "no warning in the log"
            # The other users still call.
            cc, cd, cid2, tcc, tdd = await sc.call_with_allocations(g, users, "carol", "dave")
            assert await relayed(tcc, tdd, rtp) == rtp, "another call after the mismatch"
            tcc.close()
            tdd.close()
            await cc.close()
            await cd.close()
        finally:
            for c in (ta, tb):
                c.close()
            await ca.close()
            await cb.close()
    serve(g, body)


def test_unprotected_handshake_ends_call():
    """A ServerHello that would leave the call unprotected, or with no
    certificate for the relay to check, is dropped and ends the call
    (docs/turn.md, "Media inspection"): an SRTP profile that does not
    encrypt (SRTP_NULL_SHA1_80), a cipher suite with NULL encryption, an
    anonymous suite (no certificate), DTLS 1.0. The signaled certificate
    is the one presented, so only the hello is at fault."""
    g, users = make_daemon()
    cert = der_cert(g, "a")
    cases = [
        ("srtp_profile", "0x0005", dict(profile=0x0005), "alice", "bob"),
        ("cipher_suite", "0xc006", dict(suite=0xc006), "carol", "dave"),   # ECDHE_ECDSA NULL_SHA
        ("cipher_suite", "0xc018", dict(suite=0xc018), "alice", "bob"),    # ECDH_anon AES_128_CBC
        ("version", None, dict(version=0xfeff), "carol", "dave"),          # DTLS 1.0
    ]

    async def body():
        for n, (why, shown, kw, caller, callee) in enumerate(cases, 1):
            ca, cb, cid, ta, tb = await sc.call_with_allocations(g, users, caller, callee)
            try:
                await ca.send({"type": "sdp", "call": cid, "sdp": {"type": "offer",
                                                                   "sdp": sdp("offer", cert)}})
                await cb.wait_for("sdp", call=cid)
                assert await relayed(ta, tb, server_flight(cert, **kw)) is None, \
                    "a ServerHello with a refused %s (%r) was relayed" % (why, kw)
                for c, who in ((ca, caller), (cb, callee)):
                    h = await c.wait_for("hangup", call=cid)
                    assert h.get("reason") == "inspection", "%s got %r" % (who, h)
                ev = wait_audit(g, lambda e: e.get("event") == "media.dtls" and
                                e.get("call") == cid and e.get("check") == "server_hello",
                                "server_hello media.dtls of %s" % cid)
                assert ev[0].get("refused") == why and ev[0].get("outcome") == "failure" and \
                    ev[0].get("user") == caller, ev
                if why == "srtp_profile":
                    assert ev[0].get("srtp_profile") == shown, ev
                elif why == "cipher_suite":
                    assert ev[0].get("cipher_suite") == shown, ev
                else:
                    assert ev[0].get("version") == "other", ev
                assert metric(g, "gatehouse_dtls_server_hellos_refused_total") >= n
                for t in (ta, tb):
                    r = await sc.in_thread(t.refresh, 600)
                    assert r is not None and not r.ok, "an allocation outlived the call: %r" % r
                    t.relayed = None
            finally:
                for c in (ta, tb):
                    c.close()
                await ca.close()
                await cb.close()
        assert re.search(r"chose a DTLS SRTP profile that does not protect the call",
                         g.log()), "no warning in the log"
    serve(g, body)


def test_media_only():
    """turn.media_only true: bytes of no WebRTC protocol, and DTLS that
    does not parse, are cut and counted; RTP passes; static users'
    allocations (tools) are never classified."""
    g, users = make_daemon(media_only=True)

    async def body():
        ca, cb, cid, ta, tb = await sc.call_with_allocations(g, users, "alice", "bob")
        s1 = tc.TurnClient(g.host, g.port, "udp", "tool", "tool-secret")
        s2 = tc.TurnClient(g.host, g.port, "udp", "tool", "tool-secret")
        try:
            rtp = b"\x80\x00" + os.urandom(20)
            assert await relayed(ta, tb, rtp) == rtp, "RTP was not relayed"
            assert await relayed(ta, tb, b"hello bob") is None, \
                "with media_only, bytes of no WebRTC protocol were relayed"
            assert await relayed(ta, tb, b"\x50quic-ish") is None, "a QUIC-range datagram was relayed"
            assert await relayed(ta, tb, b"\x16\xfe\xfd\x00") is None, "a cut DTLS header was relayed"
            assert metric(g, "gatehouse_relayed_packets_unclassified_total") == 3
            assert await relayed(tb, ta, rtp) == rtp, "the call no longer relays"
            for s in (s1, s2):
                r = await sc.in_thread(s.allocate)
                assert r is not None and r.ok, "static Allocate: %r" % r
            for a, b in ((s1, s2), (s2, s1)):
                r = await sc.in_thread(a.create_permission, [b.relayed])
                assert r is not None and r.ok, "static CreatePermission: %r" % r
            assert await relayed(s1, s2, b"tool bytes") == b"tool bytes"
            assert metric(g, "gatehouse_relayed_packets_unclassified_total") == 3
        finally:
            for c in (ta, tb, s1, s2):
                c.close()
            await ca.close()
            await cb.close()
    serve(g, body)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    ARGS = gh.main_args()
    gh.run_tests([
        test_certificate_must_be_signaled,
        test_unprotected_handshake_ends_call,
        test_media_only,
    ])
