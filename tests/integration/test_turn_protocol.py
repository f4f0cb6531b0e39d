#!/usr/bin/python3
"""RFC 8489 (STUN) and RFC 8656 (TURN) behaviour of the relay, and its
handling of malformed input on UDP, TCP and TLS.

Every datagram and connection goes to 127.0.0.1 (TESTING.md network rule);
127.0.0.2 is used as a second client address.
"""

import os
import socket
import ssl
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
import turnclient as tc  # noqa: E402
from turnclient import TurnClient, Message  # noqa: E402

ARGS = gh.main_args()
G = None  # the shared daemon, started in main()
USERS = {"bench": "secret", "other": "pw2"}
RT_UDP = (tc.REQUESTED_TRANSPORT, tc.requested_transport_value(tc.TRANSPORT_UDP))


# ------------------------------------------------------------- helpers

def new_client(transport="udp", user="bench", password="secret", g=None, **kw):
    g = g or G
    port = g.tls_port if transport == "tls" else g.port
    return TurnClient(g.host, port, transport, user, password, **kw)


def allocated(transport="udp", g=None, **kw):
    c = new_client(transport, g=g, **kw)
    try:
        expect(c.allocate(), 200, "Allocate over %s" % transport)
        assert c.relayed is not None, "Allocate success without XOR-RELAYED-ADDRESS"
    except BaseException:
        c.close()
        raise
    return c


def close_all(*clients):
    for c in clients:
        if c is not None:
            c.close()


def expect(resp, code, what):
    assert resp is not None, "%s: no answer (expected %s)" % (what, code)
    if isinstance(code, tuple):
        assert resp.code in code, "%s: got %r (expected one of %s)" % (what, resp, code)
    else:
        assert resp.code == code, "%s: got %r (expected %d)" % (what, resp, code)
    assert not resp.has(tc.SOFTWARE), "%s: response carries SOFTWARE: %r" % (what, resp.get(tc.SOFTWARE))
    return resp


def assert_alive(what="", g=None):
    g = g or G
    assert g.alive(), "daemon not alive after %s; log tail:\n%s" % (what, gh.tail(g.log()))


def udp_socket(local=("127.0.0.1", 0)):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(local)
    s.connect((G.host, G.port))
    return s


def drain(sock, seconds):
    """Everything that arrives on a connected UDP socket within seconds."""
    got = []
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got
        sock.settimeout(left)
        try:
            got.append(sock.recv(65536))
        except socket.timeout:
            return got
        except ConnectionRefusedError:
            continue


def binding_bytes(fingerprint=False):
    m = Message(tc.BINDING, tc.REQUEST)
    return m.encode(fingerprint=fingerprint), m.txid


def wait_closed(sock, limit):
    """Seconds until the peer closed the stream (EOF or reset), or None if
    it was still open after limit seconds. Bytes received are ignored."""
    start = time.monotonic()
    deadline = start + limit
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return None
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
        except ssl.SSLError:
            return time.monotonic() - start
        if not chunk:
            return time.monotonic() - start


def tcp_connect(port=None):
    return socket.create_connection((G.host, port or G.port), timeout=2.0)


# ------------------------------------------------------------- Binding

def test_binding_udp_tcp_tls():
    for transport in ("udp", "tcp", "tls"):
        c = new_client(transport)
        try:
            r = expect(c.binding(), 200, "Binding over %s" % transport)
            mapped = r.address(tc.XOR_MAPPED_ADDRESS)
            assert mapped == c.local_address, \
                "Binding over %s: XOR-MAPPED-ADDRESS %r, socket is %r" % (transport, mapped, c.local_address)
            r = expect(c.binding(fingerprint=True), 200, "Binding with FINGERPRINT over %s" % transport)
            assert r.check_fingerprint() is True, \
                "Binding over %s: response FINGERPRINT %s (types %s)" % (
                    transport, "missing" if r.check_fingerprint() is None else "wrong/not last", r.types)
            assert r.address(tc.XOR_MAPPED_ADDRESS) == c.local_address
        finally:
            c.close()


# ------------------------------------------------------ authentication

def test_401_challenge():
    c = new_client()
    try:
        r = expect(c.request(tc.ALLOCATE, [RT_UDP], auth=False), 401, "Allocate without credentials")
        realm = r.get(tc.REALM)
        assert realm == G.realm.encode(), "REALM %r, expected %r" % (realm, G.realm)
        nonce = r.get(tc.NONCE)
        assert nonce is not None and nonce.startswith(b"obMatJos2"), "NONCE %r lacks the obMatJos2 cookie" % nonce
        algs = tc.decode_password_algorithms(r.get(tc.PASSWORD_ALGORITHMS) or b"")
        assert algs is not None and (tc.PWALG_MD5, b"") in algs and (tc.PWALG_SHA256, b"") in algs, \
            "PASSWORD-ALGORITHMS %r does not list MD5 and SHA-256" % algs
        assert not r.has(tc.MESSAGE_INTEGRITY), "401 to an unauthenticated request carries MESSAGE-INTEGRITY"
    finally:
        c.close()


def test_wrong_password_and_unknown_user():
    bad = new_client(password="not-the-password")
    unknown = new_client(user="nosuchuser", password="secret")
    try:
        r1 = expect(bad.allocate(), 401, "Allocate with a wrong password")
        r2 = expect(unknown.allocate(), 401, "Allocate by an unknown user")
        for r, what in ((r1, "wrong password"), (r2, "unknown user")):
            assert r.has(tc.REALM) and r.has(tc.NONCE), "401 (%s) lacks REALM/NONCE: %r" % (what, r)
        assert r1.types == r2.types, \
            "401 attribute sets differ (user enumeration): wrong password %s, unknown user %s" % (
                ["0x%04x" % t for t in r1.types], ["0x%04x" % t for t in r2.types])
        assert r1.get(tc.ERROR_CODE) == r2.get(tc.ERROR_CODE), \
            "401 ERROR-CODE differs (user enumeration): %r vs %r" % (r1.reason, r2.reason)
        assert bad.relayed is None and unknown.relayed is None
    finally:
        close_all(bad, unknown)


def test_missing_username_with_integrity():
    c = new_client()
    try:
        expect(c.challenge(), 401, "challenge")
        r = c.request(tc.ALLOCATE, [RT_UDP], omit={tc.USERNAME}, retry=False)
        expect(r, (400, 401), "Allocate with REALM/NONCE/MESSAGE-INTEGRITY but no USERNAME")
    finally:
        c.close()


def test_401_reflection_bound():
    s = udp_socket()
    try:
        txid = os.urandom(12)
        req = struct.pack("!HHI", tc.message_type(tc.ALLOCATE, tc.REQUEST), 0, tc.MAGIC_COOKIE) + txid
        assert len(req) == 20
        s.send(req)
        got = drain(s, 1.0)
        sizes = [len(d) for d in got]
        # For the record (not asserted): the size of the 401 to the
        # smallest Allocate a real client sends (with REQUESTED-TRANSPORT).
        m = Message(tc.ALLOCATE, tc.REQUEST, None, [RT_UDP])
        req28 = m.encode()
        s.send(req28)
        got28 = drain(s, 1.0)
        print("note: 20-byte Allocate -> answers %s bytes; 28-byte Allocate -> answers %s bytes"
              % (sizes, [len(d) for d in got28]), flush=True)
        assert sum(sizes) <= 4 * len(req), \
            "answers of %s bytes to a 20-byte Allocate (bound %d): %r" % (
                sizes, 4 * len(req), [Message.parse(d) for d in got])
        # The smallest real Allocate still gets its challenge, within bound.
        assert len(got28) == 1 and len(got28[0]) <= 4 * len(req28), \
            "28-byte Allocate answered with %s bytes (bound %d)" % ([len(d) for d in got28], 4 * len(req28))
        assert Message.parse(got28[0]).code == 401, "28-byte Allocate: %r" % Message.parse(got28[0])
    finally:
        s.close()


def test_sha256_allocate():
    c = new_client(sha256=True)
    try:
        r = expect(c.allocate(), 200, "Allocate with PASSWORD-ALGORITHM SHA-256")
        assert c.alg_used == "sha256", "the client did not use SHA-256 (server offered %r, nonce %r)" % (
            c.server_algs, c.nonce)
        sent = Message.parse(c.last_request)
        assert sent.has(tc.MESSAGE_INTEGRITY_SHA256) and not sent.has(tc.MESSAGE_INTEGRITY)
        key = tc.key_sha256("bench", c.realm, "secret")
        # RFC 8489 §9.2.4: a response to a request authenticated with
        # MESSAGE-INTEGRITY-SHA256 is protected with MESSAGE-INTEGRITY-SHA256.
        assert r.check_integrity_sha256(key) is True, \
            "success response lacks a valid MESSAGE-INTEGRITY-SHA256 (types %s)" % ["0x%04x" % t for t in r.types]
        # The allocation is usable with the same algorithm.
        r = expect(c.refresh(600), 200, "Refresh with SHA-256")
        expect(c.refresh(0), 200, "Refresh 0 with SHA-256")
    finally:
        c.close()


def test_password_algorithm_downgrade():
    c = new_client(sha256=True)
    try:
        expect(c.challenge(), 401, "challenge")
        assert c._use_sha256(), "server offered no SHA-256 (PASSWORD-ALGORITHMS %r)" % c.server_algs
        md5_only = tc.password_algorithms_value([(tc.PWALG_MD5, b"")])
        sha_only = tc.password_algorithms_value([(tc.PWALG_SHA256, b"")])
        swapped = tc.password_algorithms_value(
            list(reversed(tc.decode_password_algorithms(c.server_algs))))
        cases = [
            ("PASSWORD-ALGORITHM SHA-256 without PASSWORD-ALGORITHMS",
             dict(omit={tc.PASSWORD_ALGORITHMS})),
            ("PASSWORD-ALGORITHMS listing only MD5", dict(replace={tc.PASSWORD_ALGORITHMS: md5_only})),
            ("PASSWORD-ALGORITHMS listing only SHA-256", dict(replace={tc.PASSWORD_ALGORITHMS: sha_only})),
            ("PASSWORD-ALGORITHMS in another order", dict(replace={tc.PASSWORD_ALGORITHMS: swapped})),
            ("PASSWORD-ALGORITHM 0x0003 (not offered)",
             dict(replace={tc.PASSWORD_ALGORITHM: tc.password_algorithm_value(3)})),
        ]
        if swapped == c.server_algs:
            cases.pop(3)
        wrong = []
        for what, kw in cases:
            r = c.request(tc.ALLOCATE, [RT_UDP], retry=False, **kw)
            if r is None or r.code != 400:
                wrong.append("%s -> %s" % (what, "no answer" if r is None else r))
        # PASSWORD-ALGORITHMS echoed but PASSWORD-ALGORITHM missing, signed
        # with the MD5 key (RFC 8489 §9.2.4: 400).
        msg = Message(tc.ALLOCATE, tc.REQUEST, None, [RT_UDP] + [
            (tc.USERNAME, b"bench"), (tc.REALM, c.realm.encode()), (tc.NONCE, c.nonce.encode()),
            (tc.PASSWORD_ALGORITHMS, c.server_algs)])
        r = c.transact(msg.encode("sha1", tc.key_md5("bench", c.realm, "secret")), msg.txid)
        if r is None or r.code != 400:
            wrong.append("PASSWORD-ALGORITHMS without PASSWORD-ALGORITHM (MD5 key) -> %s"
                         % ("no answer" if r is None else r))
        assert not wrong, "algorithm negotiation not enforced (expected 400):\n  " + "\n  ".join(wrong)
        # Positive control: the proper SHA-256 request from this socket works.
        expect(c.allocate(), 200, "proper SHA-256 Allocate after the refused ones")
    finally:
        c.close()


def test_nonce_bound_to_client_address():
    c1 = new_client()
    c2 = new_client(local=("127.0.0.2", 0))
    try:
        expect(c1.challenge(), 401, "challenge on 127.0.0.1")
        c2.realm, c2.nonce = c1.realm, c1.nonce
        r = c2.allocate(retry=False)
        expect(r, (438, 401), "Allocate from 127.0.0.2 with a nonce issued to 127.0.0.1")
        # Positive control: 127.0.0.2 with its own nonce succeeds.
        expect(c2.allocate(), 200, "Allocate from 127.0.0.2 with its own nonce")

        good = c1.nonce
        forged = [good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
                  good[:len(good) // 2],
                  "obMatJos2AAAB" + "x" * 40,
                  "not-a-nonce"]
        for n in forged:
            c1.nonce = n
            r = c1.allocate(retry=False)
            expect(r, (438, 401), "Allocate with forged nonce %r" % n)
        c1.nonce = good
        expect(c1.allocate(), 200, "Allocate with the genuine nonce")
    finally:
        close_all(c1, c2)


def test_auth_failure_rate_limit():
    cfg = {"turn": {"limits": {"auth_failures_per_source": 5}}}
    with gh.Gatehouse(ARGS.gatehouse, config=cfg, static_users=USERS) as g:
        bad = new_client(password="wrong", g=g)
        good = new_client(g=g)
        other_ip = new_client(g=g, local=("127.0.0.2", 0))
        try:
            expect(bad.challenge(), 401, "challenge")
            for i in range(5):
                expect(bad.allocate(retry=False), 401, "wrong password #%d" % (i + 1))
            r = good.allocate()
            assert r is None or r.code == 401, \
                "right password from 127.0.0.1 after 5 failures: %r (expected 401 or no answer)" % r
            mapped = gh.stun_binding(g.host, g.port)
            assert mapped is not None, "Binding refused while 127.0.0.1 is auth-blocked"
            # The block is per source: 127.0.0.2 is not affected.
            expect(other_ip.allocate(), 200, "Allocate from 127.0.0.2 while 127.0.0.1 is blocked")
        finally:
            close_all(bad, good, other_ip)


# ---------------------------------------------------------- Allocate

def test_allocate_errors():
    c = new_client()
    try:
        expect(c.allocate(transport=tc.TRANSPORT_TCP), 442, "REQUESTED-TRANSPORT TCP")
        expect(c.allocate(transport=None), 400, "no REQUESTED-TRANSPORT")
        expect(c.allocate(family=tc.FAMILY_IPV6), 440, "REQUESTED-ADDRESS-FAMILY IPv6 on an IPv4 relay")
        assert c.relayed is None
        expect(c.allocate(family=tc.FAMILY_IPV4), 200, "REQUESTED-ADDRESS-FAMILY IPv4")
    finally:
        c.close()


def test_allocate_twice_and_retransmission():
    c = new_client()
    try:
        expect(c.allocate(), 200, "first Allocate")
        relayed = c.relayed
        first = c.last_request
        txid = first[8:20]
        c.send_raw(first)
        r = c.wait_response(txid)
        assert r is not None, "retransmitted Allocate: no answer"
        assert r.code in (200, 437), "retransmitted Allocate: %r" % r
        if r.ok:
            again = r.address(tc.XOR_RELAYED_ADDRESS)
            assert again == relayed, "retransmitted Allocate got relayed %r, first %r (a second allocation?)" % (
                again, relayed)
        else:
            print("note: retransmitted Allocate answered 437 (RFC 8656 §7.2 prefers the same success)", flush=True)
        r = c.request(tc.ALLOCATE, [RT_UDP])
        expect(r, 437, "second Allocate on the same 5-tuple (new txid)")
        # Still exactly the first allocation.
        expect(c.refresh(0), 200, "Refresh 0")
        expect(c.refresh(), 437, "Refresh after deletion")
    finally:
        c.close()


def test_lifetimes():
    c1 = new_client()
    c2 = new_client()
    try:
        r = expect(c1.allocate(lifetime=999999), 200, "Allocate LIFETIME 999999")
        assert r.lifetime == 3600, "LIFETIME 999999 answered %r (expected 3600)" % r.lifetime
        r = expect(c2.allocate(lifetime=1), 200, "Allocate LIFETIME 1")
        assert r.lifetime == 600, "LIFETIME 1 answered %r (expected 600)" % r.lifetime
        r = expect(c2.refresh(999999), 200, "Refresh LIFETIME 999999")
        assert r.lifetime == 3600, "Refresh 999999 answered %r (expected 3600)" % r.lifetime
        r = expect(c2.refresh(), 200, "Refresh without LIFETIME")
        assert r.lifetime == 600, "Refresh without LIFETIME answered %r (expected 600)" % r.lifetime
        r = expect(c1.refresh(0), 200, "Refresh LIFETIME 0")
        assert r.lifetime == 0, "Refresh 0 answered LIFETIME %r" % r.lifetime
        expect(c1.refresh(), 437, "Refresh after deletion")
        expect(c1.refresh(0), 437, "Refresh 0 after deletion")
    finally:
        close_all(c1, c2)


def test_refresh_other_5tuple():
    a = allocated()
    b = new_client()
    try:
        # A bare 20-byte Refresh is too small to be challenged (reflection
        # bound), so learn the nonce the way real clients do: Allocate.
        expect(b.challenge(), 401, "challenge for a nonce")
        expect(b.refresh(), 437, "Refresh from a 5-tuple without allocation")
        expect(b.create_permission([a.relayed]), 437, "CreatePermission from a 5-tuple without allocation")
        expect(a.refresh(), 200, "Refresh of the real allocation")
    finally:
        close_all(a, b)


def test_refresh_wrong_user():
    c = allocated()
    try:
        c.user, c.password = "other", "pw2"
        expect(c.refresh(), 441, "Refresh by another user on the same 5-tuple")
        r = c.create_permission([c.relayed])
        expect(r, 441, "CreatePermission by another user on the same 5-tuple")
        c.user, c.password = "bench", "secret"
        expect(c.refresh(), 200, "Refresh by the owner")
    finally:
        c.close()


def test_unknown_attributes():
    c = new_client()
    d = new_client()
    try:
        expect(c.challenge(), 401, "challenge")
        r = expect(c.allocate(extra_attrs=[(0x0031, b"\0\0\0\0")]), 420,
                   "authenticated Allocate with comprehension-required 0x0031")
        unknown = tc.decode_unknown_attributes(r.get(tc.UNKNOWN_ATTRIBUTES) or b"")
        assert 0x0031 in unknown, "UNKNOWN-ATTRIBUTES %s does not list 0x0031" % ["0x%04x" % t for t in unknown]
        assert c.relayed is None
        expect(c.allocate(), 200, "Allocate without the unknown attribute")
        expect(d.allocate(extra_attrs=[(0x8031, b"\0\0\0\0")]), 200,
               "Allocate with comprehension-optional 0x8031")
    finally:
        close_all(c, d)


# -------------------------------------------------------- ChannelBind

def test_channel_bind_rules():
    a = allocated()
    b = allocated()
    c = allocated()
    try:
        for ch in (0x0000, 0x3FFF, 0x8000, 0xFFFF):
            expect(a.channel_bind(ch, b.relayed), 400, "ChannelBind 0x%04x" % ch)
        expect(a.channel_bind(0x4000, b.relayed), 200, "ChannelBind 0x4000 to B")
        expect(a.channel_bind(0x4000, c.relayed), 400, "ChannelBind 0x4000 (bound to B) to C")
        expect(a.channel_bind(0x4001, b.relayed), 400, "ChannelBind 0x4001 to B (bound to 0x4000)")
        expect(a.channel_bind(0x4000, b.relayed), 200, "ChannelBind 0x4000 to B again (refresh)")
        expect(a.channel_bind(0x4FFF, c.relayed), 200, "ChannelBind 0x4FFF to C")
    finally:
        close_all(a, b, c)


def test_channel_number_range():
    """Channel numbers: RFC 8656 narrowed them to 0x4000-0x4FFF, but RFC
    5766 clients (coturn's own uclient among them) use 0x4000-0x7FFF, so
    Gatehouse accepts the older range (docs/turn.md); everything outside
    it gets 400."""
    a = allocated()
    peers = []
    try:
        wrong = []
        for ch, want in ((0x5000, 200), (0x7FFF, 200), (0x8000, 400), (0xFFFF, 400)):
            peers.append(allocated())  # a peer of its own: no same-peer conflict
            r = a.channel_bind(ch, peers[-1].relayed)
            if r is None or r.code != want:
                wrong.append("ChannelBind 0x%04x -> %s (expected %d)" % (
                    ch, "no answer" if r is None else r, want))
        assert not wrong, "channel range:\n  " + "\n  ".join(wrong)
        # And a bound 0x7FFF channel carries data.
        expect(peers[1].create_permission([a.relayed]), 200, "peer permission back")
        a.send_channel(0x7FFF, b"old-range")
        got = peers[1].recv_data(2.0)
        assert got == ("data", a.relayed, b"old-range"), "data over channel 0x7FFF: %r" % (got,)
    finally:
        close_all(a, *peers)


# -------------------------------------------------------------- quotas

def test_static_users_not_bound_by_per_user_quota():
    """allocations_per_user bounds call participants (486; unit-tested in
    test_server.c, since minting call credentials needs AES-GCM); static
    users are the operator's load tools and only allocations_total bounds
    them."""
    cfg = {"turn": {"limits": {"allocations_per_user": 2}}}
    with gh.Gatehouse(ARGS.gatehouse, config=cfg) as g:
        cs = [new_client(g=g) for _ in range(3)]
        try:
            expect(cs[0].allocate(), 200, "static allocation 1")
            expect(cs[1].allocate(), 200, "static allocation 2")
            expect(cs[2].allocate(), 200, "static allocation 3 (not bound per user)")
        finally:
            close_all(*cs)


def test_allocation_total_limit():
    cfg = {"turn": {"limits": {"allocations_total": 2}}}
    with gh.Gatehouse(ARGS.gatehouse, config=cfg) as g:
        cs = [new_client(g=g) for _ in range(3)]
        try:
            expect(cs[0].allocate(), 200, "allocation 1 of 2 in total")
            expect(cs[1].allocate(), 200, "allocation 2 of 2 in total")
            expect(cs[2].allocate(), (486, 508), "allocation 3 of 2 in total")
            expect(cs[0].refresh(0), 200, "delete allocation 1")
            expect(cs[2].allocate(), 200, "allocation after one was deleted")
        finally:
            close_all(*cs)


def test_port_range_exhausted():
    g = gh.Gatehouse(ARGS.gatehouse)
    lo = g.port_min  # the window is reserved for this instance
    g.config["turn"]["port_range"] = "%d-%d" % (lo, lo + 1)
    with g:
        cs = [new_client(g=g) for _ in range(3)]
        try:
            expect(cs[0].allocate(), 200, "allocation 1 of a 2-port range")
            expect(cs[1].allocate(), 200, "allocation 2 of a 2-port range")
            ports = {cs[0].relayed[1], cs[1].relayed[1]}
            assert ports == {lo, lo + 1}, "relayed ports %s outside %d-%d" % (ports, lo, lo + 1)
            expect(cs[2].allocate(), 508, "allocation 3 of a 2-port range")
            assert g.alive()
        finally:
            close_all(*cs)


EVEN_PORT_R = (tc.EVEN_PORT, b"\x80")


def test_reservations_not_hoarded():
    """EVEN-PORT with R reserves the next port for 30 s in a table of 256
    that everyone shares. A reservation goes with the allocation that made
    it, so allocating and deleting over and over holds none; and one user
    holds at most 4 at a time (486 beyond), while others still get theirs."""
    c = new_client()
    held = []
    try:
        for i in range(260):
            r = c.allocate(extra_attrs=[EVEN_PORT_R])
            expect(r, 200, "Allocate with EVEN-PORT R, cycle %d" % (i + 1))
            assert r.has(tc.RESERVATION_TOKEN), "cycle %d: no RESERVATION-TOKEN" % (i + 1)
            expect(c.refresh(0), 200, "Refresh 0, cycle %d" % (i + 1))
        token = r.get(tc.RESERVATION_TOKEN)
        d = new_client()
        held.append(d)
        expect(d.allocate(extra_attrs=[(tc.RESERVATION_TOKEN, token)]), 508,
               "claiming the reservation of a deleted allocation")
        for i in range(4):
            h = new_client()
            held.append(h)
            expect(h.allocate(extra_attrs=[EVEN_PORT_R]), 200,
                   "reservation %d of 4 for one user" % (i + 1))
        f = new_client()
        held.append(f)
        expect(f.allocate(extra_attrs=[EVEN_PORT_R]), 486, "a fifth reservation for the same user")
        o = new_client(user="other", password="pw2")
        held.append(o)
        expect(o.allocate(extra_attrs=[EVEN_PORT_R]), 200,
               "another user's reservation while the first holds 4")
    finally:
        close_all(c, *held)


# ---------------------------------------------------- malformed on UDP

def test_malformed_udp_headers():
    s = udp_socket()
    try:
        good, txid = binding_bytes()
        s.send(b"")
        for n in range(1, 20):
            s.send(good[:n])
        got = drain(s, 1.0)
        assert not got, "answers to an empty datagram / Binding prefixes: %r" % got[:3]
        assert_alive("empty datagram and 1..19-byte prefixes")

        cases = []
        bad_cookie = bytearray(good)
        bad_cookie[4:8] = b"\x21\x12\xa4\x43"
        cases.append(("bad magic cookie", bytes(bad_cookie)))
        m = Message(tc.BINDING, tc.REQUEST, None, [(0x8030, b"abcd")]).encode()
        not4 = bytearray(m + b"\0\0")
        not4[2:4] = struct.pack("!H", len(m) - 20 + 2)
        cases.append(("length not a multiple of 4", bytes(not4)))
        longer = bytearray(m)
        longer[2:4] = struct.pack("!H", len(m) - 20 + 64)
        cases.append(("length larger than the datagram", bytes(longer)))
        overrun = bytearray(m)
        overrun[22:24] = struct.pack("!H", 200)
        cases.append(("attribute length overruns the message", bytes(overrun)))
        for what, data in cases:
            s.send(data)
            for d in drain(s, 0.3):
                try:
                    r = Message.parse(d)
                except ValueError:
                    continue
                assert r.cls != tc.SUCCESS, "%s: answered with success %r" % (what, r)
            assert_alive(what)
        s.send(good)
        r = [Message.parse(d) for d in drain(s, 1.0)]
        assert any(x.txid == txid and x.ok for x in r), "valid Binding after malformed input unanswered"
    finally:
        s.close()


def test_udp_huge_garbage():
    s = udp_socket()
    try:
        # 65535 does not fit a UDP/IPv4 datagram; 65507 is the largest.
        for first in (b"\xff", b"\x00\x01\xff\xfc" + struct.pack("!I", tc.MAGIC_COOKIE), b"\x40\x00\xff\xff"):
            s.send(first + os.urandom(65507 - len(first)))
            assert_alive("a 65507-byte datagram starting %r" % first)
    finally:
        s.close()


def test_allocate_with_100_attributes():
    c = new_client()
    try:
        expect(c.challenge(), 401, "challenge")
        extra = [(0x8040 + i, struct.pack("!I", i)) for i in range(100)]
        r = c.allocate(extra_attrs=extra, retry=False)
        print("note: Allocate with 100 attributes -> %r" % r, flush=True)
        assert_alive("an Allocate with 100 attributes")
        extra = [(0x0040 + i, struct.pack("!I", i)) for i in range(100)]
        r = c.allocate(extra_attrs=extra, retry=False)
        if r is not None and r.code == 420:
            n = len(tc.decode_unknown_attributes(r.get(tc.UNKNOWN_ATTRIBUTES) or b""))
            assert len(r.raw) <= len(c.last_request), "420 larger than the request (%d > %d)" % (
                len(r.raw), len(c.last_request))
            print("note: 100 unknown comprehension-required -> 420 listing %d" % n, flush=True)
        assert r is None or not r.ok, "Allocate with 100 unknown comprehension-required attributes succeeded"
        assert_alive("an Allocate with 100 unknown comprehension-required attributes")
    finally:
        c.close()


def test_wrong_fingerprint_dropped():
    s = udp_socket()
    try:
        good, txid = binding_bytes(fingerprint=True)
        bad = good[:-1] + bytes([good[-1] ^ 0x01])
        s.send(bad)
        got = drain(s, 1.0)
        assert not got, "Binding with a wrong FINGERPRINT answered: %r" % [Message.parse(d) for d in got]
        s.send(good)
        got = drain(s, 1.0)
        assert got and Message.parse(got[0]).txid == txid, "Binding with a correct FINGERPRINT unanswered"
    finally:
        s.close()


def pair_with_channel():
    """A and B allocated, permissions both ways, A's channel 0x4001 -> B."""
    a = allocated()
    b = allocated()
    expect(a.create_permission([b.relayed]), 200, "A CreatePermission to B")
    expect(b.create_permission([a.relayed]), 200, "B CreatePermission to A")
    expect(a.channel_bind(0x4001, b.relayed), 200, "A ChannelBind 0x4001 to B")
    return a, b


def test_channeldata_dropped_cases():
    a, b = pair_with_channel()
    try:
        a.send_channel(0x4ABC, b"unbound channel")
        got = b.recv_data(0.7)
        assert got is None, "B received %r via an unbound channel" % (got,)
        assert_alive("ChannelData on an unbound channel")

        a.send_raw(struct.pack("!HH", 0x4001, 100) + b"only ten b")
        got = b.recv_data(0.7)
        assert got is None, "B received %r from a ChannelData whose length exceeds the datagram" % (got,)
        assert_alive("ChannelData with a length beyond the datagram")

        a.send_raw(struct.pack("!HH", 0x4001, 0xFFFF))
        assert b.recv_data(0.5) is None, "B received data from a 4-byte ChannelData announcing 65535"
        assert_alive("ChannelData header only")

        # Positive control.
        a.send_channel(0x4001, b"proper")
        got = b.recv_data(2.0)
        assert got == ("data", a.relayed, b"proper"), "B got %r from a proper ChannelData" % (got,)
    finally:
        close_all(a, b)


def test_indications_dropped_cases():
    a, b = pair_with_channel()
    try:
        m = Message(tc.DATA, tc.INDICATION)
        m.add(tc.XOR_PEER_ADDRESS, tc.xor_address(b.relayed[0], b.relayed[1], m.txid))
        m.add(tc.DATA_ATTR, b"client-sent Data indication")
        a.send_raw(m.encode())
        got = b.recv_data(0.7)
        assert got is None, "a Data indication from a client was relayed: %r" % (got,)
        assert a.recv_raw(0.1) is None, "a Data indication from a client was answered"

        m = Message(tc.SEND, tc.INDICATION)
        m.add(tc.XOR_PEER_ADDRESS, tc.xor_address(b.relayed[0], b.relayed[1], m.txid))
        a.send_raw(m.encode())
        got = b.recv_data(0.7)
        assert got is None, "a Send indication without DATA was relayed: %r" % (got,)

        m = Message(tc.SEND, tc.INDICATION)
        m.add(tc.DATA_ATTR, b"no peer")
        a.send_raw(m.encode())
        assert a.recv_raw(0.3) is None, "a Send indication without XOR-PEER-ADDRESS was answered"
        assert_alive("malformed indications")

        # A Send request (not indication) is not a TURN method: no relay.
        m = Message(tc.SEND, tc.REQUEST)
        m.add(tc.XOR_PEER_ADDRESS, tc.xor_address(b.relayed[0], b.relayed[1], m.txid))
        m.add(tc.DATA_ATTR, b"send as request")
        a.send_raw(m.encode())
        got = b.recv_data(0.7)
        assert got is None, "a Send *request* was relayed: %r" % (got,)

        # Positive control.
        a.send_indication(b.relayed, b"proper")
        got = b.recv_data(2.0)
        assert got == ("data", a.relayed, b"proper"), "B got %r from a proper Send" % (got,)
    finally:
        close_all(a, b)


# ---------------------------------------------------- malformed on TCP

def client_hello():
    """The bytes of a real TLS ClientHello (no connection involved)."""
    ctx = tc.tls_client_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert hello[:1] == b"\x16" and len(hello) > 40, "could not make a ClientHello"
    return hello


def test_tcp_garbage_closed():
    for what, data in (("0xff bytes", b"\xff" * 64),
                       ("an HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                       ("a TLS ClientHello", client_hello())):
        s = tcp_connect()
        try:
            s.sendall(data)
            t = wait_closed(s, 2.0)
            assert t is not None, "TCP connection still open 2 s after %s" % what
        finally:
            s.close()
        assert_alive("TCP garbage (%s)" % what)


def test_tcp_oversized_frames_closed():
    for what, hdr in (("STUN header announcing 5000 bytes",
                       struct.pack("!HHI", 0x0001, 5000, tc.MAGIC_COOKIE) + os.urandom(12)),
                      ("STUN header announcing 65532 bytes",
                       struct.pack("!HHI", 0x0003, 65532, tc.MAGIC_COOKIE) + os.urandom(12)),
                      ("ChannelData header announcing 65535 bytes", struct.pack("!HH", 0x4000, 0xFFFF)),
                      ("ChannelData header announcing 4097 bytes", struct.pack("!HH", 0x4000, 4097))):
        s = tcp_connect()
        try:
            s.sendall(hdr + b"\0" * 16)
            t = wait_closed(s, 2.0)
            assert t is not None, "TCP connection still open 2 s after a %s" % what
        finally:
            s.close()
        assert_alive(what)


def test_tcp_pipelined_and_split():
    c = new_client("tcp")
    try:
        reqs = [binding_bytes() for _ in range(3)]
        c.send_raw(b"".join(r for r, _ in reqs))
        for _, txid in reqs:
            r = c.wait_response(txid)
            expect(r, 200, "one of three Bindings sent in one write")
        req, txid = binding_bytes(fingerprint=True)
        for piece in (req[:2], req[2:11], req[11:23], req[23:]):
            c.send_raw(piece)
            time.sleep(0.15)
        expect(c.wait_response(txid), 200, "a Binding split over four writes")
        # And an authenticated Allocate plus a Binding in one write.
        expect(c.challenge(), 401, "challenge over TCP")
        msg, data = c.build_request(tc.ALLOCATE, [RT_UDP])
        b2, t2 = binding_bytes()
        c.send_raw(data + b2)
        expect(c.wait_response(msg.txid), 200, "Allocate pipelined with a Binding")
        expect(c.wait_response(t2), 200, "Binding pipelined after an Allocate")
    finally:
        c.close()


def test_stalled_connections_closed():
    """Connections that never complete a first message or a handshake are
    closed (10 s in the daemon; 15 s allowed). All run in parallel."""
    hello = client_hello()
    cases = [("TCP port, nothing sent", G.port, b""),
             ("TCP port, 10 bytes of a STUN header", G.port, binding_bytes()[0][:10]),
             ("TCP port, STUN header announcing 8 bytes, 4 sent",
              G.port, struct.pack("!HHI", 0x0001, 8, tc.MAGIC_COOKIE) + os.urandom(12) + b"\x80\x22"),
             ("TLS port, nothing sent", G.tls_port, b""),
             ("TLS port, half a ClientHello", G.tls_port, hello[:len(hello) // 2]),
             ("TLS port, whole ClientHello, then silence", G.tls_port, hello)]
    results = {}

    def run(what, port, data):
        try:
            s = tcp_connect(port)
        except OSError as e:
            results[what] = "connect failed: %s" % e
            return
        try:
            if data:
                s.sendall(data)
            results[what] = wait_closed(s, 15.0)
        finally:
            s.close()

    threads = [threading.Thread(target=run, args=c) for c in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    wrong = ["%s: %s" % (w, "still open after 15 s" if results.get(w) is None else results[w])
             for w, _, _ in cases if not isinstance(results.get(w), float)]
    assert not wrong, "stalled connections not closed:\n  " + "\n  ".join(wrong)
    print("note: closed after " + ", ".join("%s %.1fs" % (w, results[w]) for w, _, _ in cases), flush=True)
    assert_alive("stalled connections")


def test_plain_stun_on_tls_port():
    s = tcp_connect(G.tls_port)
    try:
        req, txid = binding_bytes()
        s.sendall(req)
        received = b""
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < 5.0:
            s.settimeout(max(0.01, 5.0 - (time.monotonic() - start)))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
        assert closed, "plain STUN on the TLS port: connection still open after 5 s"
        assert txid not in received, "plain STUN on the TLS port was answered in clear: %r" % received[:64]
    finally:
        s.close()
    assert_alive("plain STUN on the TLS port")
    # TLS still works afterwards.
    c = new_client("tls")
    try:
        expect(c.binding(), 200, "Binding over TLS after the plain client")
    finally:
        c.close()


def test_tls_pipelined_not_stalled():
    """Thousands of Bindings sent over TLS in one go are all answered
    without the client sending anything more. A connection gets 16 reads
    of up to 4 KiB per event; when they run out, the rest of a TLS record
    may already sit decrypted in OpenSSL, where epoll cannot see it, and
    used to wait for the client's next bytes."""
    ctx = gh.tls_client_context()
    stalled = []
    for n in range(3200, 4400, 37):
        t = ctx.wrap_socket(socket.create_connection((G.host, G.tls_port), timeout=2.0),
                            server_hostname="localhost")
        try:
            reqs = [binding_bytes()[0] for _ in range(n)]
            t.sendall(b"".join(reqs))
            got = 0
            deadline = time.monotonic() + 5.0
            while got < 32 * n and time.monotonic() < deadline:
                t.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = t.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                got += len(chunk)
            if got != 32 * n:
                stalled.append("%d sent, %d answered" % (n, got // 32))
        finally:
            t.close()
    assert not stalled, "pipelined Bindings over TLS left unanswered until the client " \
        "sent more:\n  " + "\n  ".join(stalled)


# --------------------------------------------- allocation and connection

def test_tcp_close_removes_allocation():
    t = allocated("tcp")
    u = allocated()
    try:
        relayed = t.relayed
        expect(u.create_permission([relayed]), 200, "CreatePermission to a live TCP allocation's relayed address")
        t.sock.close()
        deadline = time.monotonic() + 1.0
        while True:
            r = u.create_permission([relayed])
            if r is not None and r.code == 403 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        expect(r, 403, "CreatePermission to the relayed address of a closed TCP allocation")
        assert_alive("TCP allocation teardown")
    finally:
        close_all(u)


# ------------------------------------------------- connection limits

def open_stream(g, local_ip, use_tls=False):
    """A TCP (or TLS) connection from local_ip that has had a Binding
    answered: (socket, None); or (None, why) when the relay closed it
    without an answer (why is "closed") or did not answer in time."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((local_ip, 0))
        s.settimeout(2.0)
        s.connect((g.host, g.tls_port if use_tls else g.port))
        if use_tls:
            s = gh.tls_client_context().wrap_socket(s, server_hostname="localhost")
        req, txid = binding_bytes()
        s.sendall(req)
        resp = gh.recv_stun_stream(s, 2.0)
    except TimeoutError:  # before OSError, which it is
        s.close()
        return None, "no answer within 2 s"
    except (ConnectionError, ssl.SSLError):
        s.close()
        return None, "closed"
    except OSError as e:
        s.close()
        return None, "%s: %s" % (type(e).__name__, e)
    if txid not in resp:
        s.close()
        return None, "an answer to another transaction"
    return s, None


def metric(g, name, **labels):
    """The value of one series on the admin listener's /metrics."""
    import http.client
    conn = http.client.HTTPConnection(g.host, g.admin_port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    want = name + ("{%s}" % ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
                   if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    raise AssertionError("no series %s in /metrics" % want)


def test_connections_per_source():
    """One source holds at most turn.limits.connections_per_source (32 by
    default) TCP and TLS connections together; the next is closed at once,
    unanswered. Another source is not affected, and a slot comes back when
    a connection ends."""
    with gh.Gatehouse(ARGS.gatehouse, static_users=USERS) as g:
        def run():
            held = []
            try:
                for i in range(32):
                    tls = i % 4 == 3
                    s, why = open_stream(g, "127.0.0.5", tls)
                    assert s is not None, "%s connection %d of 32 from 127.0.0.5: %s" % (
                        "TLS" if tls else "TCP", i + 1, why)
                    held.append(s)
                for tls in (False, True):
                    s, why = open_stream(g, "127.0.0.5", tls)
                    if s is not None:
                        s.close()
                    assert why == "closed", "33rd connection (%s) from 127.0.0.5: %s" % (
                        "TLS" if tls else "TCP", why or "answered")
                for tls in (False, True):
                    s, why = open_stream(g, "127.0.0.6", tls)
                    assert s is not None, "%s connection from 127.0.0.6 while 127.0.0.5 is at " \
                        "its limit: %s" % ("TLS" if tls else "TCP", why)
                    s.close()
                c = TurnClient(g.host, g.port, "tcp", "bench", "secret", local=("127.0.0.6", 0))
                try:
                    expect(c.allocate(), 200, "Allocate over TCP from 127.0.0.6")
                finally:
                    c.close()
                # A closed connection gives its slot back.
                held.pop().close()
                deadline = time.monotonic() + 2.0
                while True:
                    s, why = open_stream(g, "127.0.0.5")
                    if s is not None or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                assert s is not None, "no slot for 127.0.0.5 after one of its connections " \
                    "closed: %s" % why
                held.append(s)
                n = metric(g, "gatehouse_turn_connections_refused_total", limit="per_source")
                assert n >= 2, "refused connections counted: %g (expected at least 2)" % n
                assert "too many connections from that source" in g.log(), \
                    "refusal not logged (debug)"
                n = metric(g, "gatehouse_turn_connections")
                assert n == 32, "gatehouse_turn_connections %g with 32 open" % n
            finally:
                for s in held:
                    s.close()
        gh.with_log(g, run)


def vm_data_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmData:"):
                return int(line.split()[1])
    raise AssertionError("no VmData in /proc/%d/status" % pid)


def test_idle_connections_hold_no_output_buffer():
    """A stream connection's output buffer (up to 256 KiB) exists only while
    output waits for the socket: 300 connections that were answered and
    went idle add far less than 300 x 256 KiB to the daemon's memory."""
    n = 300
    cfg = {"turn": {"limits": {"connections_per_source": 4096}}}
    with gh.Gatehouse(ARGS.gatehouse, config=cfg, static_users=USERS) as g:
        def run():
            held = []
            try:
                before = vm_data_kib(g.proc.pid)
                for i in range(n):
                    s, why = open_stream(g, "127.0.0.1")
                    assert s is not None, "connection %d of %d: %s" % (i + 1, n, why)
                    held.append(s)
                grew = vm_data_kib(g.proc.pid) - before
                print("note: %d idle connections grew the daemon's data by %d KiB" % (n, grew),
                      flush=True)
                assert grew < n * 256 // 4, "%d idle connections grew the daemon's data by " \
                    "%d KiB (a 256 KiB buffer each would be %d KiB)" % (n, grew, n * 256)
                # And output that has to wait still arrives whole: 200
                # Bindings in one write, answered while the client reads.
                c = new_client("tcp", g=g)
                try:
                    reqs = [binding_bytes() for _ in range(200)]
                    c.send_raw(b"".join(r for r, _ in reqs))
                    for _, txid in reqs:
                        expect(c.wait_response(txid), 200, "one of 200 pipelined Bindings")
                finally:
                    c.close()
            finally:
                for s in held:
                    s.close()
        gh.with_log(g, run)


def test_connection_without_allocation_closed():
    """A TCP connection without an allocation is closed 30 s
    (RELAY_IO_NO_ALLOC_MS) after it was opened or its allocation ended,
    even while it keeps sending Bindings; one with an allocation stays."""
    bare = new_client("tcp")
    ended = allocated("tcp")
    kept = allocated("tcp")
    try:
        expect(ended.refresh(0), 200, "Refresh 0 over TCP")
        start = time.monotonic()
        closed = {}
        while time.monotonic() - start < 45 and len(closed) < 2:
            for name, c in (("bare", bare), ("ended", ended)):
                if name not in closed:
                    c.binding()
                    if c.closed:
                        closed[name] = time.monotonic() - start
            expect(kept.binding(), 200, "Binding on the connection with an allocation")
            time.sleep(1.0)
        wrong = ["%s: %s" % (k, "still open after 45 s" if k not in closed else
                             "closed after %.1f s" % closed[k])
                 for k in ("bare", "ended") if not 28 <= closed.get(k, 0) <= 40]
        assert not wrong, "connections without an allocation (expected closed after " \
            "about 30 s):\n  " + "\n  ".join(wrong)
        assert not kept.closed, "the connection with an allocation was closed"
        expect(kept.refresh(), 200, "Refresh on the connection with an allocation")
        assert "no allocation" in G.log(), "closing not logged with its reason"
    finally:
        close_all(bare, ended, kept)


# --------------------------------------------------------- clock steps

def test_wall_clock_steps():
    """The relay's timers run on the monotonic clock: a step of the wall
    clock back does not close TCP/TLS connections as idle, and a step
    forward does not expire allocations. Nonces, stamped with the wall
    clock, go stale across the forward step and are renewed (438)."""
    with gh.WallShift() as ws:
        g = gh.Gatehouse(ARGS.gatehouse, static_users=USERS)
        ws.wrap(g)
        with g:
            def run():
                tcp = allocated("tcp", g=g)
                tls = allocated("tls", g=g)
                udp = allocated(g=g)
                try:
                    # 3 s back: the relay's timer fires (once a second) while
                    # the wall clock is behind every connection's last input.
                    ws.step(-3000)
                    time.sleep(2.5)
                    for c in (tcp, tls, udp):
                        expect(c.refresh(), 200, "Refresh over %s after the wall clock stepped "
                               "back 3 s" % c.transport)
                        assert not c.closed, "%s connection closed after the wall clock " \
                            "stepped back" % c.transport
                    # 2 hours ahead: past every allocation's lifetime (600 s)
                    # and every nonce's (600 s), for the wall clock only.
                    ws.step(2 * 3600 * 1000)
                    time.sleep(2.5)
                    for c in (tcp, tls, udp):
                        r = expect(c.refresh(), 200, "Refresh over %s after the wall clock "
                                   "stepped 2 hours ahead" % c.transport)
                        assert r.lifetime == 600, "lifetime %r after the step" % r.lifetime
                    log = g.log()
                    assert "removed (expired)" not in log and ": idle" not in log, \
                        "allocations expired or connections closed by a wall clock step:\n%s" % \
                        "\n".join(l for l in log.splitlines() if "removed" in l or "closing" in l)
                finally:
                    close_all(tcp, tls, udp)
            gh.with_log(g, run)


def main():
    global G
    cfg = {"turn": {"limits": {"auth_failures_per_source": 1000, "allocations_per_user": 64}}}
    code = 1
    with gh.Gatehouse(ARGS.gatehouse, config=cfg, static_users=USERS) as g:
        G = g
        try:
            gh.run_tests([
                test_binding_udp_tcp_tls,
                test_401_challenge,
                test_wrong_password_and_unknown_user,
                test_missing_username_with_integrity,
                test_401_reflection_bound,
                test_sha256_allocate,
                test_password_algorithm_downgrade,
                test_nonce_bound_to_client_address,
                test_allocate_errors,
                test_allocate_twice_and_retransmission,
                test_lifetimes,
                test_refresh_other_5tuple,
                test_refresh_wrong_user,
                test_unknown_attributes,
                test_channel_bind_rules,
                test_channel_number_range,
                test_malformed_udp_headers,
                test_udp_huge_garbage,
                test_allocate_with_100_attributes,
                test_wrong_fingerprint_dropped,
                test_channeldata_dropped_cases,
                test_indications_dropped_cases,
                test_tcp_garbage_closed,
                test_tcp_oversized_frames_closed,
                test_tcp_pipelined_and_split,
                test_stalled_connections_closed,
                test_plain_stun_on_tls_port,
                test_tls_pipelined_not_stalled,
                test_tcp_close_removes_allocation,
                test_static_users_not_bound_by_per_user_quota,
                test_allocation_total_limit,
                test_port_range_exhausted,
                test_reservations_not_hoarded,
                test_auth_failure_rate_limit,
                test_wall_clock_steps,
                test_connections_per_source,
                test_idle_connections_hold_no_output_buffer,
                test_connection_without_allocation_closed,
            ])
        except SystemExit as e:  # leave the with normally: stop() is checked
            code = e.code
    sys.exit(code)


if __name__ == "__main__":
    main()
