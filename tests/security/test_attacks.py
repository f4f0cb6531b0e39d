#!/usr/bin/python3
"""Black-box attack cases against one running Gatehouse daemon.

Every case asserts the safe outcome and then that the daemon still
serves: a STUN Binding is answered and a fresh WebSocket ping gets pong.
A second daemon is started only where the configuration must differ
(a tiny relay port range). Refused/public addresses appear only inside
requests; all traffic goes to 127.0.0.1. See README.md for the case list.
"""

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import gh  # noqa: E402
import turnclient as tc  # noqa: E402
import sigclient as sc  # noqa: E402
import adminclient as ac  # noqa: E402
from turnclient import TurnClient, Message  # noqa: E402

ARGS = gh.main_args()
G = None
LOOP = asyncio.new_event_loop()
USERS = {}
KEYS = {}
BG = {}
EX = concurrent.futures.ThreadPoolExecutor(8)
RT_UDP = (tc.REQUESTED_TRANSPORT, tc.requested_transport_value(17))
NAMED_PORT = 5000
HOST_IP = "192.168.77.10"
SRFLX_IP = "198.51.100.7"
OTHER_TURN_IP = "203.0.113.9"

REFUSED_V4 = ["0.0.0.1", "10.0.0.1", "100.64.0.1", "127.1.2.3", "169.254.169.254",
              "172.16.0.1", "192.0.0.1", "192.0.2.1", "192.88.99.1", "192.168.1.1",
              "198.18.0.1", "198.51.100.1", "203.0.113.1", "224.0.0.1", "240.0.0.1",
              "255.255.255.255"]
REFUSED_V6 = ["::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1",
              "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a00:1::1",
              "2001:0:4136:e378:8000:63bf:f5ff:fffe", "fc00::1", "fd12:3456::1", "fe80::1",
              "fec0::1", "ff02::1", "2001:db8::1", "100::1"]


def run(coro, timeout=60):
    return LOOP.run_until_complete(asyncio.wait_for(coro, timeout))


def serves(g=None):
    g = g or G
    assert g.proc.poll() is None, "daemon exited; log tail:\n%s" % gh.tail(g.log())
    assert gh.stun_binding(g.host, g.port, timeout=2.0) is not None, \
        "no STUN Binding answer afterwards; log tail:\n%s" % gh.tail(g.log())
    run(sc.fresh_ping(g))


def client(g=None, user="bench", password="secret", transport="udp", **kw):
    g = g or G
    port = g.tls_port if transport == "tls" else g.port
    return TurnClient(g.host, port, transport, user, password, **kw)


def allocated(g=None, **kw):
    c = client(g, **kw)
    r = c.allocate()
    assert r is not None and r.ok, "Allocate: %r" % r
    return c


def expect(resp, codes, what):
    codes = codes if isinstance(codes, tuple) else (codes,)
    assert resp is not None, "%s: no answer (expected %s)" % (what, codes)
    assert resp.code in codes, "%s: got %r (expected %s)" % (what, resp, codes)


def udp_sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.connect((G.host, G.port))
    return s


def no_answer(s, seconds=0.5):
    s.settimeout(seconds)
    try:
        d = s.recv(65536)
    except (socket.timeout, ConnectionRefusedError):
        return None
    return d


def raw_udp_case(data, allow_error=False):
    s = udp_sock()
    try:
        s.send(data)
        d = no_answer(s)
        if d is not None:
            m = gh.parse_stun(d)
            assert allow_error and m is not None and (m[0] & 0x0110) == 0x0110, \
                "malformed datagram answered with %r" % d[:64]
    finally:
        s.close()
    serves()


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def assert_nothing(sock, seconds, what):
    sock.settimeout(seconds)
    try:
        data, src = sock.recvfrom(65536)
    except socket.timeout:
        return
    raise AssertionError("%s: received %d bytes from %s" % (what, len(data), src))


# ============================================================ STUN/TURN parsing

def test_parse_truncated_header():
    b, _ = gh.build_stun(1)
    raw_udp_case(b[:10])


def test_parse_length_beyond_datagram():
    b, _ = gh.build_stun(1)
    raw_udp_case(b[:2] + struct.pack("!H", 400) + b[4:])


def test_parse_length_not_multiple_of_4():
    b, _ = gh.build_stun(1, [(tc.SOFTWARE, b"abcd")])
    raw_udp_case(b[:2] + struct.pack("!H", 6) + b[4:26])


def test_parse_attribute_overruns_message():
    b, _ = gh.build_stun(1, [(tc.SOFTWARE, b"abcdefgh")])
    b = b[:20] + struct.pack("!HH", tc.SOFTWARE, 0xFFF0) + b[24:]
    raw_udp_case(b, allow_error=True)


def test_parse_100_attributes():
    attrs = [RT_UDP] + [(0x8000 + i, b"x" * 4) for i in range(100)]
    m, txid = gh.build_stun(0x0003, attrs)
    s = udp_sock()
    try:
        s.send(m)
        d = no_answer(s, 1.0)
        if d is not None:
            p = gh.parse_stun(d)
            assert p is not None and p[0] != 0x0103, "Allocate with 100 attributes succeeded: %r" % d[:40]
    finally:
        s.close()
    serves()


def test_parse_huge_datagram():
    raw_udp_case(os.urandom(65507))


def test_parse_huge_stun_datagram():
    body = b"".join(struct.pack("!HH", 0x8000 + (i % 100), 60) + b"y" * 60 for i in range(1000))
    b = struct.pack("!HHI", 1, len(body), gh.MAGIC_COOKIE) + os.urandom(12) + body
    raw_udp_case(b, allow_error=True)


def test_parse_bad_fingerprint():
    m = Message(tc.BINDING, tc.REQUEST)
    data = bytearray(m.encode(fingerprint=True))
    data[-1] ^= 0xFF
    raw_udp_case(bytes(data))


def test_parse_fingerprint_not_last():
    m = Message(tc.BINDING, tc.REQUEST)
    data = m.encode(fingerprint=True)
    extra = struct.pack("!HH", tc.SOFTWARE, 4) + b"evil"
    data = data[:2] + struct.pack("!H", len(data) - 20 + 8) + data[4:] + extra
    raw_udp_case(data, allow_error=True)


def _pair_with_channel():
    a = allocated()
    b = allocated()
    expect(a.channel_bind(0x4001, b.relayed), 200, "ChannelBind a->b")
    expect(b.create_permission([a.relayed]), 200, "CreatePermission b->a")
    return a, b


def test_channeldata_length_lies():
    a, b = _pair_with_channel()
    try:
        a.send_raw(struct.pack("!HH", 0x4001, 500) + b"short")   # claims more than sent
        a.send_raw(struct.pack("!HH", 0x4001, 2))                 # header only
        a.send_raw(b"\x40\x01")                                   # truncated header
        got = b.recv_data(0.7)
        assert got is None, "lying ChannelData was relayed: %r" % (got,)
        a.send_channel(0x4001, b"ok")
        got = b.recv_data(2.0)
        assert got is not None and got[2] == b"ok", "genuine ChannelData after lies: %r" % (got,)
    finally:
        a.close(); b.close()
    serves()


def test_channeldata_unbound_channel():
    a, b = _pair_with_channel()
    try:
        a.send_channel(0x4FFF, b"nope")
        a.send_channel(0x7FFF, b"nope")
        got = b.recv_data(0.7)
        assert got is None, "ChannelData on an unbound channel relayed: %r" % (got,)
    finally:
        a.close(); b.close()
    serves()


def test_udp_ports_not_shared():
    """Another local process cannot bind the relay's UDP ports alongside it
    (SO_REUSEADDR on UDP would let any local user do so and receive the
    datagrams meant for the relay), neither the listener nor a relayed port."""
    a = allocated()
    try:
        for what, port in (("listener", G.port), ("relayed port", a.relayed[1])):
            for opt in (socket.SO_REUSEADDR, socket.SO_REUSEPORT):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    s.setsockopt(socket.SOL_SOCKET, opt, 1)
                    try:
                        s.bind(("127.0.0.1", port))
                    except OSError as e:
                        assert e.errno == 98, "%s: bind failed with %s" % (what, e)
                    else:
                        raise AssertionError("a second socket bound the %s %d with %s"
                                             % (what, port, "SO_REUSEADDR" if opt ==
                                                socket.SO_REUSEADDR else "SO_REUSEPORT"))
                finally:
                    s.close()
        r = a.refresh(600)
        assert r is not None and r.ok, "the allocation stopped working: %r" % r
    finally:
        a.close()
    serves()


def test_tcp_frame_too_large_closed():
    s = socket.create_connection((G.host, G.port), timeout=3)
    try:
        s.sendall(struct.pack("!HHI", 1, 0xFFFC, gh.MAGIC_COOKIE) + os.urandom(12) + b"z" * 60000)
        s.settimeout(3)
        closed = False
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    closed = True
                    break
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            closed = True  # timeout also acceptable: nothing answered
    finally:
        s.close()
    assert closed
    serves()


def test_tcp_garbage_closed():
    s = socket.create_connection((G.host, G.port), timeout=3)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(200))
        s.settimeout(3)
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            d = b""
        assert d == b"", "garbage on TURN/TCP answered with %r" % d[:40]
    finally:
        s.close()
    serves()


# ============================================================ peer-address bypasses

def _all_refused(method, peers, label):
    a = allocated()
    bad = []
    try:
        for i, ip in enumerate(peers):
            if method == "perm":
                r = a.create_permission([(ip, NAMED_PORT)])
            else:
                r = a.channel_bind(0x4000 + i, (ip, NAMED_PORT))
            if r is None or r.code not in (403, 443):
                bad.append("%s %s -> %r" % (label, ip, r))
            if ":" not in ip and (r is None or r.code != 403):
                bad.append("%s %s expected 403 -> %r" % (label, ip, r))
    finally:
        a.close()
    assert not bad, "\n  ".join([""] + bad)
    serves()


def test_peer_refused_v4_create_permission():
    _all_refused("perm", REFUSED_V4, "CreatePermission")


def test_peer_refused_v6_create_permission():
    _all_refused("perm", REFUSED_V6, "CreatePermission")


def test_peer_refused_v4_channel_bind():
    _all_refused("chan", REFUSED_V4, "ChannelBind")


def test_peer_refused_v6_channel_bind():
    _all_refused("chan", REFUSED_V6, "ChannelBind")


def test_peer_own_service_ports():
    a = allocated()
    try:
        for port in (G.port, G.tls_port, G.signaling_port, G.admin_port):
            expect(a.create_permission([("127.0.0.1", port)]), 403, "permission to own port %d" % port)
            expect(a.channel_bind(0x4100, ("127.0.0.1", port)), 403, "channel to own port %d" % port)
    finally:
        a.close()
    serves()


def test_peer_relayed_address_v6_spellings():
    a = allocated()
    b = allocated()
    try:
        ip, port = b.relayed
        v4 = socket.inet_aton(ip)
        for raw in (b"\0" * 10 + b"\xff\xff" + v4, b"\0" * 12 + v4,
                    bytes.fromhex("0064ff9b") + b"\0" * 8 + v4, b"\x20\x02" + v4 + b"\0" * 10):
            addr = socket.inet_ntop(socket.AF_INET6, raw)
            r = a.create_permission([(addr, port)])
            expect(r, (403, 443), "relayed address spelled %s" % addr)
    finally:
        a.close(); b.close()
    serves()


def test_peer_mixed_list_installs_none():
    a = allocated()
    b = allocated()
    try:
        expect(a.create_permission([b.relayed, ("10.0.0.1", NAMED_PORT)]), 403, "mixed list")
        a.send_indication(b.relayed, b"should-not-pass")
        expect(b.create_permission([a.relayed]), 200, "b->a permission")
        got = b.recv_data(0.7)
        assert got is None, "permission from a refused mixed list was installed: %r" % (got,)
    finally:
        a.close(); b.close()
    serves()


def test_send_indication_without_permission():
    a = allocated()
    b = allocated()
    lst = listener()
    try:
        a.send_indication(lst.getsockname(), b"escape")
        a.send_indication(b.relayed, b"no-permission")
        a.send_indication(("10.0.0.1", NAMED_PORT), b"x")  # named only; refused anyway
        assert_nothing(lst, 0.5, "Send to a plain loopback socket")
        got = b.recv_data(0.5)
        assert got is None, "Send indication without permission delivered: %r" % (got,)
    finally:
        a.close(); b.close(); lst.close()
    serves()


# ============================================================ TURN authentication

def test_auth_forged_nonce():
    c = client()
    try:
        expect(c.challenge(), 401, "challenge")
        good = c.nonce
        for n in (good[:-2] + ("AA" if not good.endswith("AA") else "BB"), "obMatJos2AAAB" + "x" * 40,
                  "not-a-nonce", good[:len(good) // 2]):
            c.nonce = n
            expect(c.allocate(retry=False), (401, 438), "forged nonce %r" % n)
    finally:
        c.close()
    serves()


def test_auth_nonce_from_another_address():
    c1 = client()
    c2 = client(local=("127.0.0.2", 0))
    try:
        expect(c1.challenge(), 401, "challenge")
        c2.realm, c2.nonce = c1.realm, c1.nonce
        expect(c2.allocate(retry=False), (401, 438), "nonce of another address")
    finally:
        c1.close(); c2.close()
    serves()


def test_auth_replayed_request_other_address():
    a = client()
    try:
        r = a.allocate()
        assert r is not None and r.ok, r
        captured = a.last_request
    finally:
        a.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.2", 0))
    s.connect((G.host, G.port))
    try:
        s.send(captured)
        d = no_answer(s, 1.5)
        if d is not None:
            m = Message.parse(d)
            assert not m.ok, "replayed Allocate from another address succeeded: %r" % m
    finally:
        s.close()
    serves()


def test_auth_stale_nonce_replay_after_delete():
    """The same signed Allocate replayed after the allocation is deleted,
    from the same 5-tuple but with a new transaction id, is not accepted
    with a forged signature (txid is covered by MESSAGE-INTEGRITY)."""
    c = client()
    try:
        expect(c.allocate(), 200, "allocate")
        data = bytearray(c.last_request)
        data[8:20] = os.urandom(12)
        expect(c.refresh(0), 200, "delete")
        c.relayed = None
        r = c.transact(bytes(data), bytes(data[8:20]))
        expect(r, (400, 401), "replayed Allocate with a new txid")
    finally:
        c.close(release=False)
    serves()


def test_auth_wrong_realm():
    c = client()
    try:
        expect(c.challenge(), 401, "challenge")
        r = c.allocate(retry=False, replace={tc.REALM: b"evil.realm"})
        expect(r, (400, 401, 438), "wrong realm")
    finally:
        c.close()
    serves()


def test_auth_missing_integrity():
    c = client()
    try:
        expect(c.challenge(), 401, "challenge")
        r = c.allocate(retry=False, integrity="none")
        expect(r, (400, 401), "no MESSAGE-INTEGRITY")
    finally:
        c.close()
    serves()


def test_auth_wrong_password():
    c = client(password="wrong")
    try:
        expect(c.allocate(), 401, "wrong password")
    finally:
        c.close()
    serves()


def test_auth_password_algorithm_downgrade():
    c = client(sha256=True)
    try:
        expect(c.challenge(), 401, "challenge")
        assert c._use_sha256(), "no SHA-256 offered"
        md5_only = tc.password_algorithms_value([(tc.PWALG_MD5, b"")])
        for kw in (dict(omit={tc.PASSWORD_ALGORITHMS}),
                   dict(replace={tc.PASSWORD_ALGORITHMS: md5_only}),
                   dict(replace={tc.PASSWORD_ALGORITHM: tc.password_algorithm_value(3)})):
            expect(c.request(tc.ALLOCATE, [RT_UDP], retry=False, **kw), 400, "downgrade %r" % kw)
    finally:
        c.close()
    serves()


def test_auth_other_user_same_5tuple_441():
    c = client()
    try:
        expect(c.allocate(), 200, "allocate as bench")
        c.user, c.password = "eve", "evil-pw"
        expect(c.refresh(600), 441, "Refresh as another user on the same 5-tuple")
        expect(c.create_permission([("8.8.8.8", 1)]), 441, "CreatePermission as another user")
        c.user, c.password = "bench", "secret"
    finally:
        c.close()
    serves()


def test_auth_forged_call_credentials():
    fake = "gh1." + base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=")
    c = client(user=fake, password=base64.urlsafe_b64encode(os.urandom(24)).decode())
    try:
        expect(c.allocate(), 401, "forged call credentials")
    finally:
        c.close()
    serves()


async def setup_call(caller, callee, media=("audio", "data")):
    ca = await sc.connect(G, caller)
    cb = await sc.connect(G, callee)
    for c, n in ((ca, caller), (cb, callee)):
        r = await c.login(n, USERS[n].password)
        assert r.get("type") == "login.ok", "login %s: %r" % (n, r)
    r = await ca.request({"type": "call", "to": callee, "media": list(media)})
    assert r.get("type") == "call.ok", "call refused: %r" % r
    cid = r["call"]
    await cb.wait_for("incoming", call=cid)
    r2 = await cb.request({"type": "accept", "call": cid})
    assert r2.get("type") == "accept.ok", "accept refused: %r" % r2
    await ca.wait_for("accepted", call=cid)
    return ca, cb, cid, r["ice_servers"][0], r2["ice_servers"][0]


def test_auth_call_credentials_after_hangup():
    async def body():
        ca, cb, cid, s1, s2 = await setup_call("carol", "dave")
        try:
            c = TurnClient(G.host, G.port, "udp", s1["username"], s1["credential"])
            r = c.allocate()
            c.close()
            assert r is not None and r.ok, "call credentials during the call: %r" % r
            await cb.send({"type": "hangup", "call": cid})
            await ca.wait_for("hangup", call=cid)
            await asyncio.sleep(0.2)
            for s in (s1, s2):
                c = TurnClient(G.host, G.port, "udp", s["username"], s["credential"])
                try:
                    expect(c.allocate(), 401, "call credentials after hangup")
                finally:
                    c.close()
        finally:
            await ca.close(); await cb.close()
    run(body())
    serves()


def test_auth_tampered_call_credentials():
    async def body():
        ca, cb, cid, s1, s2 = await setup_call("erin", "frank")
        try:
            u = s1["username"]
            mid = len(u) // 2
            flip = u[:mid] + ("A" if u[mid] != "A" else "B") + u[mid + 1:]
            for user, pw in ((flip, s1["credential"]), (s1["username"], s2["credential"]),
                             (s1["username"], s1["credential"][:-1])):
                c = TurnClient(G.host, G.port, "udp", user, pw)
                try:
                    expect(c.allocate(), 401, "tampered call credentials")
                finally:
                    c.close()
            await cb.send({"type": "hangup", "call": cid})
        finally:
            await ca.close(); await cb.close()
    run(body())
    serves()


# ============================================================ exhaustion

def test_exhaust_allocations_total_508():
    cs = []
    try:
        code = None
        for _ in range(40):
            c = client()
            cs.append(c)
            r = c.allocate()
            assert r is not None, "no answer during the flood"
            if not r.ok:
                code = r.code
                break
        assert code == 508, "allocation flood ended with %r after %d" % (code, len(cs))
    finally:
        for c in cs:
            c.close()
    time.sleep(0.1)
    c = allocated()
    c.close()
    serves()


def test_exhaust_permissions_508():
    a = allocated()
    try:
        codes = [code_of(a.create_permission([("8.8.8.%d" % i, 1)])) for i in range(1, 7)]
        assert codes[:4] == [200] * 4 and codes[4:] == [508, 508], "permission flood: %r" % codes
        expect(a.create_permission([("8.8.8.1", 2)]), 200, "refresh of an existing permission")
    finally:
        a.close()
    serves()


def code_of(r):
    return None if r is None else r.code


def test_exhaust_channels_508():
    a = allocated()
    try:
        codes = [code_of(a.channel_bind(0x4000 + i, ("8.8.4.4", 1000 + i))) for i in range(6)]
        assert codes[:4] == [200] * 4 and codes[4:] == [508, 508], "channel flood: %r" % codes
    finally:
        a.close()
    serves()


def test_exhaust_port_range():
    cfg = {"turn": {"limits": {"auth_failures_per_source": 1000}}}
    g2 = gh.Gatehouse(ARGS.gatehouse, config=cfg)
    g2.config["turn"]["port_range"] = "%d-%d" % (g2.port_min, g2.port_min + 1)
    with g2:
        cs = []
        try:
            codes = []
            for _ in range(4):
                c = client(g2)
                cs.append(c)
                codes.append(code_of(c.allocate()))
            assert codes[:2] == [200, 200] and codes[2:] == [508, 508], "tiny port range: %r" % codes
            cs[0].close()
            cs.pop(0)
            time.sleep(0.1)
            c = client(g2)
            cs.append(c)
            expect(c.allocate(), 200, "after a port is freed")
        finally:
            for c in cs:
                c.close()
        serves(g2)
    serves()


def _half_open(kind):
    port = G.tls_port if kind == "tls" else (G.signaling_port if kind == "ws" else G.port)
    s = socket.create_connection((G.host, port), timeout=3)
    if kind == "tls-partial":
        s.close()
        return None
    t0 = time.monotonic()
    s.settimeout(16)
    try:
        if kind == "ws":
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        elif kind == "tls":
            s.sendall(b"\x16\x03\x01\x00\x50")  # half a ClientHello record
        while True:
            d = s.recv(4096)
            if not d:
                break
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    finally:
        s.close()
    return time.monotonic() - t0


def _check_half_open(kind):
    dt = BG[kind].result(timeout=30)
    assert dt is not None, "half-open %s connection still open after 16 s" % kind
    assert 7.0 <= dt <= 14.0, "half-open %s connection closed after %.1f s (expected ~10 s)" % (kind, dt)
    serves()


def test_half_open_tcp_closed():
    _check_half_open("tcp")


def test_half_open_tls_closed():
    _check_half_open("tls")


def test_half_open_websocket_closed():
    _check_half_open("ws")


def test_reflection_unauthenticated_answers():
    s = udp_sock()
    try:
        worst = []
        for msg in (gh.build_stun(0x0001)[0], gh.build_stun(0x0003, [RT_UDP])[0],
                    gh.build_stun(0x0004)[0], gh.build_stun(0x0008)[0],
                    gh.build_stun(0x0003, [(0x7F00, b"")])[0]):
            s.send(msg)
            d = no_answer(s, 1.0)
            if d is not None:
                worst.append((len(msg), len(d)))
                assert len(d) <= 4 * len(msg), "answer of %d bytes to a %d-byte request" % (len(d), len(msg))
        assert worst, "nothing answered at all"
    finally:
        s.close()
    serves()


# ============================================================ WebSocket / JSON

def ws_upgrade_status(origin=None, extra=""):
    s = socket.create_connection((G.host, G.signaling_port), timeout=5)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               % (G.signaling_port, key))
        if origin is not None:
            req += "Origin: %s\r\n" % origin
        s.sendall((req + extra + "\r\n").encode())
        buf = b""
        while b"\r\n" not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
        return buf.split(b"\r\n")[0].decode("latin-1")
    finally:
        s.close()


def test_ws_wrong_origin_403():
    for o in ("https://evil.example", "null", "http://127.0.0.1:%d" % (G.signaling_port + 1),
              "http://127.0.0.1:%d.evil.example" % G.signaling_port):
        st = ws_upgrade_status(o)
        assert " 403 " in st + " ", "Origin %s: %r" % (o, st)
    serves()


def test_ws_overlong_origin_403():
    host = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 53]) + ".example"
    for origin in ("https://" + host, "https://" + host[-240:], "https://" + host[-247:]):
        st = ws_upgrade_status(origin)
        assert " 403 " in st + " ", "Origin of %d bytes: %r" % (len(origin), st)
    serves()


async def _bad_json(text, want_msg=None):
    async with sc.SigClient(sc.ws_url(G), name="bad") as c:
        await c.send_raw(text)
        r = await c.wait(lambda m: True, 5, "an answer")
        assert r.get("type") == "error" and r.get("code") == "bad_request", "answered %r" % r
        if want_msg:
            assert want_msg in (r.get("message") or ""), "message %r" % r
        await c.ping()


def test_ws_oversized_frame():
    run(_bad_json(json.dumps({"type": "ping", "id": 1, "pad": "x" * (70 * 1024)}), "too large"))
    serves()


def test_ws_depth_20():
    run(_bad_json('{"type":"ping","id":4,"x":' + "[" * 20 + "]" * 20 + "}", "nested"))
    serves()


def test_ws_duplicate_keys():
    run(_bad_json('{"type":"ping","type":"login","id":3}', "duplicate"))
    serves()


def test_ws_nul_byte():
    run(_bad_json('{"type":"ping","id":"a\\u0000b"}'))
    serves()


def test_ws_binary_frame():
    async def body():
        async with sc.SigClient(sc.ws_url(G), name="bin") as c:
            await c.ws.send_bytes(b'{"type":"ping","id":1}')
            r = await c.wait(lambda m: True, 5, "an answer")
            assert r.get("type") == "error" and r.get("code") == "bad_request", "binary frame: %r" % r
    run(body())
    serves()


def test_ws_flood():
    ws = sc.RawWebSocket(G.host, G.signaling_port)
    try:
        ws.send_texts([json.dumps({"type": "ping", "id": i}) for i in range(400)])
        frames, how = ws.read_until_closed(8)
        texts = [json.loads(p) for op, p in frames if op == 1]
        pongs = sum(1 for m in texts if m.get("type") == "pong")
        errs = [m for m in texts if m.get("type") == "error"]
        assert how in ("close-frame", "eof", "reset"), "flooding connection not closed (%s)" % how
        assert pongs <= 60, "%d pongs to a flood" % pongs
        assert any("too many" in (m.get("message") or "") for m in errs), "no rate error: %r" % errs[:3]
    finally:
        ws.close()
    serves()


def test_ws_too_many_connections_503():
    held = []
    try:
        for _ in range(32):
            held.append(sc.RawWebSocket(G.host, G.signaling_port))
        st = ws_upgrade_status()
        assert " 503 " in st + " ", "33rd connection from one address: %r" % st
    finally:
        for w in held:
            w.close()
    time.sleep(0.3)
    serves()


# ============================================================ JWT

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(header, claims, sig=None, hs_key=None, rsa=False):
    si = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    if hs_key is not None:
        sig = hmac.new(hs_key, si.encode(), hashlib.sha256).digest()
    elif rsa:
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEYS["rsa"]], input=si.encode(),
                             stdout=subprocess.PIPE, check=True).stdout
    return si + "." + b64u(sig or b"")


def claims(**kw):
    now = int(time.time())
    c = {"iss": "https://idp.test", "aud": "gatehouse", "sub": "alice", "iat": now, "exp": now + 600}
    c.update(kw)
    return c


def _jwt_refused(tok):
    async def body():
        async with sc.SigClient(sc.ws_url(G), name="jwt") as c:
            r = await c.login(token=tok)
            assert r.get("type") == "error" and r.get("code") == "auth_failed", "token accepted: %r" % r
            r = await c.request({"type": "contacts"})
            assert r.get("type") == "error", "contacts after a refused token: %r" % r
    run(body())
    serves()


def test_jwt_good_token_control():
    async def body():
        async with sc.SigClient(sc.ws_url(G), name="jwt") as c:
            r = await c.login(token=jwt({"alg": "RS256", "kid": "rsa1"}, claims(), rsa=True))
            assert r.get("type") == "login.ok", "valid token refused: %r" % r
    run(body())
    serves()


def test_jwt_alg_none():
    _jwt_refused(jwt({"alg": "none", "typ": "JWT"}, claims()))


def test_jwt_hs256_with_public_key():
    _jwt_refused(jwt({"alg": "HS256", "kid": "rsa1"}, claims(), hs_key=KEYS["pub"]))


def test_jwt_expired():
    now = int(time.time())
    _jwt_refused(jwt({"alg": "RS256", "kid": "rsa1"}, claims(iat=now - 7200, exp=now - 3600), rsa=True))


def test_jwt_wrong_audience():
    _jwt_refused(jwt({"alg": "RS256", "kid": "rsa1"}, claims(aud="someone-else"), rsa=True))


def test_jwt_tampered_payload():
    h, p, s = jwt({"alg": "RS256", "kid": "rsa1"}, claims(sub="bob"), rsa=True).split(".")
    _jwt_refused(h + "." + b64u(json.dumps(claims(sub="root")).encode()) + "." + s)


# ============================================================ SDP / candidates

CALL = {}


def _call():
    if "c" not in CALL:
        async def body():
            ca, cb, cid, s1, s2 = await setup_call("alice", "bob")
            return ca, cb, cid, s1
        ca, cb, cid, s1 = run(body())
        t = TurnClient(G.host, G.port, "udp", s1["username"], s1["credential"])
        r = t.allocate()
        assert r is not None and r.ok, "call allocation: %r" % r
        CALL["c"] = (ca, cb, cid, t)
    return CALL["c"]


def relay_line(ip, port, typ="relay", raddr="0.0.0.0", rport=0):
    return ("candidate:5 1 udp 16777215 %s %d typ %s raddr %s rport %d generation 0"
            % (ip, port, typ, raddr, rport))


def _candidate_dropped(cand):
    ca, cb, cid, t = _call()

    async def body():
        await ca.send({"type": "candidate", "call": cid,
                       "candidate": {"candidate": cand, "sdpMid": "0", "sdpMLineIndex": 0}})
        await ca.ping()
        await cb.expect_nothing(0.5, lambda m: m.get("type") == "candidate")
        await cb.ping()
    run(body())
    serves()


def test_sdp_host_candidate_removed():
    _candidate_dropped("candidate:1 1 udp 2122260223 %s 50000 typ host generation 0" % HOST_IP)


def test_sdp_srflx_candidate_removed():
    _candidate_dropped("candidate:2 1 udp 1686052607 %s 50001 typ srflx raddr %s rport 50000"
                       % (SRFLX_IP, HOST_IP))


def test_sdp_mdns_candidate_removed():
    _candidate_dropped("candidate:1 1 udp 2122260223 0a1b2c3d-1111-2222-3333-444455556666.local 50000 typ host")


def test_sdp_foreign_relay_removed():
    _candidate_dropped(relay_line(OTHER_TURN_IP, 3478))


def test_sdp_crlf_injection_in_candidate():
    ca, cb, cid, t = _call()
    ip, port = t.relayed
    _candidate_dropped(relay_line(ip, port) + "\r\na=candidate:1 1 udp 2122260223 %s 50000 typ host" % HOST_IP)


def test_sdp_offer_filtered():
    ca, cb, cid, t = _call()
    rip, rport = t.relayed
    sdp = ("v=0\r\no=- 1 2 IN IP4 {h}\r\ns=-\r\nt=0 0\r\nm=audio 50000 UDP/TLS/RTP/SAVPF 111\r\n"
           "c=IN IP4 {h}\r\na=candidate:1 1 udp 2122260223 {h} 50000 typ host\r\n"
           "a=candidate:2 1 udp 1686052607 {s} 50001 typ srflx raddr {h} rport 50000\r\n"
           "a=candidate:3 1 udp 2122260223 abcd-1234.local 50000 typ host\r\n"
           "a=candidate:4 1 udp 41885439 {o} 3478 typ relay raddr {s} rport 50001\r\n"
           "a=candidate:5 1 udp 16777215 {r} {p} typ relay raddr {h} rport 50000\r\n"
           "a=ice-ufrag:Ab12\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=mid:0\r\n"
           "a=rtpmap:111 opus/48000/2\r\n").format(h=HOST_IP, s=SRFLX_IP, o=OTHER_TURN_IP, r=rip, p=rport)

    async def body():
        await ca.send({"type": "sdp", "call": cid, "sdp": {"type": "offer", "sdp": sdp}})
        m = await cb.wait_for("sdp", call=cid, timeout=3)
        out = m["sdp"]["sdp"]
        for bad in (HOST_IP, SRFLX_IP, OTHER_TURN_IP, ".local"):
            assert bad not in out, "%s survives in the forwarded SDP:\n%s" % (bad, out)
        cands = [l for l in out.splitlines() if "candidate:" in l]
        assert len(cands) == 1 and ("%s %d typ relay" % (rip, rport)) in cands[0], cands
    run(body())
    serves()


# ============================================================ admin API

def test_admin_no_token_401():
    api = ac.AdminClient(G)
    for path in ("/api/status", "/api/users", "/api/audit", "/api/policy"):
        st, b = api.call("GET", path)
        assert st == 401, "%s without a token: %d %r" % (path, st, b)
    serves()


def test_admin_forged_token_401():
    api = ac.AdminClient(G)
    for tok in (b64u(os.urandom(32)), "x" * 500, "' OR 1=1 --", ADMIN_TOKENS["root"] + "x"):
        st, b = api.call("GET", "/api/users", token=tok)
        assert st == 401, "forged token %r: %d %r" % (tok[:20], st, b)
    serves()


def test_admin_cross_origin_403():
    api = ac.AdminClient(G)
    tok = ADMIN_TOKENS["root"]
    for origin in ("https://evil.example", "null", "http://127.0.0.1:%d" % (G.admin_port + 1)):
        for method, path, body in (("GET", "/api/users", None),
                                   ("PUT", "/api/policy", {"default": "allow", "groups": {}, "rules": []}),
                                   ("POST", "/api/users/bob/disable", None)):
            st, b = api.call(method, path, body=body, token=tok, origin=origin)
            assert st == 403, "%s %s with Origin %s: %d %r" % (method, path, origin, st, b)
    api.expect(200, "GET", "/api/status", token=tok)
    serves()


def test_admin_overlong_origin_403():
    api = ac.AdminClient(G)
    host = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 53]) + ".example"
    for origin in ("https://" + host, "https://" + host[-247:], "https://" + "e" * 3000 + ".example"):
        st, b = api.call("GET", "/api/status", token=ADMIN_TOKENS["root"], origin=origin)
        assert st in (403, 400, 431) and st != 200, "Origin of %d bytes: %d" % (len(origin), st)
        assert st == 403 or len(origin) > 2000, "Origin of %d bytes: HTTP %d" % (len(origin), st)
    serves()


def test_admin_auditor_cannot_put_policy():
    api = ac.AdminClient(G)
    tok = ADMIN_TOKENS["aud"]
    before = api.expect(200, "GET", "/api/policy", token=ADMIN_TOKENS["root"])
    st, b = api.call("PUT", "/api/policy", body={"default": "allow", "groups": {}, "rules": []}, token=tok)
    assert st == 403, "auditor PUT /api/policy: %d %r" % (st, b)
    after = api.expect(200, "GET", "/api/policy", token=ADMIN_TOKENS["root"])
    assert before == after, "policy changed by an auditor"
    serves()


def test_admin_login_without_totp_401():
    api = ac.AdminClient(G)
    u = USERS["root"]
    for body in ({"user": u.name, "password": u.password},
                 {"user": u.name, "password": u.password, "totp": None},
                 {"user": "nosuch", "password": "whatever-password"}):
        st, b = api.call("POST", "/api/login", body=body)
        assert st == 401 and "token" not in (b if isinstance(b, dict) else {}), "%r: %d %r" % (body, st, b)
    serves()


ADMIN_TOKENS = {}


# ============================================================ main

def setup(g):
    d = g.workdir
    KEYS["rsa"] = os.path.join(d, "rsa.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", KEYS["rsa"]], check=True, capture_output=True)
    KEYS["pub"] = subprocess.run(["openssl", "pkey", "-in", KEYS["rsa"], "-pubout"],
                                 check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "rsa", "-in", KEYS["rsa"], "-noout", "-modulus"],
                         check=True, capture_output=True).stdout.decode()
    n = bytes.fromhex(der.strip().split("=", 1)[1])
    jwks = {"keys": [{"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256",
                      "n": b64u(n), "e": b64u(b"\x01\x00\x01")}]}
    jpath = os.path.join(d, "jwks.json")
    with open(jpath, "w") as f:
        json.dump(jwks, f)
    os.chmod(jpath, 0o644)
    ppath = os.path.join(d, "policy.json")
    sc.write_policy(ppath, [{"name": "team", "from": "group:team", "to": "group:team",
                             "media": ["audio", "video", "data", "screen"], "action": "allow"}],
                    {"team": ["alice", "bob", "carol", "dave", "erin", "frank"]})
    os.chmod(ppath, 0o644)
    g.config["policy"] = {"file": ppath}
    g.config["identity"] = {"mfa": "optional", "backends": [
        {"type": "local"},
        {"type": "jwt", "issuer": "https://idp.test", "audience": "gatehouse", "jwks_file": jpath}]}
    sc.write_config(g)
    spec = {"root": (["admin"], True), "aud": (["auditor"], True)}
    for n in ("alice", "bob", "carol", "dave", "erin", "frank"):
        spec[n] = (["team"], False)
    first = "root"
    USERS[first] = sc.create_user(g, first, "pw-root-0123456789", ["admin"], True)
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = {n: ex.submit(sc.create_user, g, n, "pw-%s-0123456789" % n, gr, t)
                for n, (gr, t) in spec.items() if n != first}
        for n, f in futs.items():
            USERS[n] = f.result()


TESTS = [
    test_parse_truncated_header, test_parse_length_beyond_datagram, test_parse_length_not_multiple_of_4,
    test_parse_attribute_overruns_message, test_parse_100_attributes,
    test_parse_huge_datagram, test_parse_huge_stun_datagram, test_parse_bad_fingerprint,
    test_parse_fingerprint_not_last, test_channeldata_length_lies, test_channeldata_unbound_channel,
    test_udp_ports_not_shared, test_tcp_frame_too_large_closed, test_tcp_garbage_closed,
    test_peer_refused_v4_create_permission, test_peer_refused_v6_create_permission,
    test_peer_refused_v4_channel_bind, test_peer_refused_v6_channel_bind, test_peer_own_service_ports,
    test_peer_relayed_address_v6_spellings, test_peer_mixed_list_installs_none,
    test_send_indication_without_permission,
    test_auth_forged_nonce, test_auth_nonce_from_another_address, test_auth_replayed_request_other_address,
    test_auth_stale_nonce_replay_after_delete, test_auth_wrong_realm, test_auth_missing_integrity,
    test_auth_wrong_password, test_auth_password_algorithm_downgrade, test_auth_other_user_same_5tuple_441,
    test_auth_forged_call_credentials, test_auth_call_credentials_after_hangup,
    test_auth_tampered_call_credentials,
    test_exhaust_allocations_total_508, test_exhaust_permissions_508, test_exhaust_channels_508,
    test_exhaust_port_range, test_reflection_unauthenticated_answers,
    test_ws_wrong_origin_403, test_ws_overlong_origin_403, test_ws_oversized_frame, test_ws_depth_20,
    test_ws_duplicate_keys, test_ws_nul_byte, test_ws_binary_frame, test_ws_flood,
    test_ws_too_many_connections_503,
    test_jwt_good_token_control, test_jwt_alg_none, test_jwt_hs256_with_public_key, test_jwt_expired,
    test_jwt_wrong_audience, test_jwt_tampered_payload,
    test_sdp_host_candidate_removed, test_sdp_srflx_candidate_removed, test_sdp_mdns_candidate_removed,
    test_sdp_foreign_relay_removed, test_sdp_crlf_injection_in_candidate, test_sdp_offer_filtered,
    test_admin_no_token_401, test_admin_forged_token_401, test_admin_cross_origin_403,
    test_admin_overlong_origin_403, test_admin_auditor_cannot_put_policy, test_admin_login_without_totp_401,
    test_half_open_tcp_closed, test_half_open_tls_closed, test_half_open_websocket_closed,
]


def main():
    global G
    cfg = {"turn": {"static_users": {"bench": "secret", "eve": "evil-pw"},
                    "limits": {"auth_failures_per_source": 100000, "allocations_per_user": 64,
                               "allocations_total": 24, "permissions_per_allocation": 4,
                               "channels_per_allocation": 4}}}
    g = gh.Gatehouse(ARGS.gatehouse, config=cfg)
    setup(g)
    code = 1
    with g:
        G = g
        api = ac.AdminClient(g)
        ADMIN_TOKENS["root"] = api.login(USERS["root"])
        ADMIN_TOKENS["aud"] = api.login(USERS["aud"])
        for kind in ("tcp", "tls", "ws"):
            BG[kind] = EX.submit(_half_open, kind)
        try:
            gh.run_tests(TESTS)
        except SystemExit as e:
            code = e.code
        finally:
            if "c" in CALL:
                ca, cb, cid, t = CALL.pop("c")
                t.close()
                run(ca.close()); run(cb.close())
    sys.exit(code)


if __name__ == "__main__":
    main()
