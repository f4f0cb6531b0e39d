#!/usr/bin/python3
"""The relay is never an open proxy.

Every special-purpose address range, in every spelling (IPv4, IPv4-mapped,
IPv4-compatible, NAT64, 6to4, Teredo), is refused with 403 by
CreatePermission and ChannelBind; so are the gateway's own service ports.
The one exception, another allocation's relayed transport address, works
in both directions over UDP, TCP and TLS, and is exact: it does not open
the rest of 127.0.0.1, and it ends with the allocation.

Network rule (TESTING.md): refused addresses and public addresses appear
only inside requests; every datagram goes to 127.0.0.1.
"""

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402
from turnclient import TurnClient  # noqa: E402

ARGS = gh.main_args()
G = None  # the shared daemon, started in main()

# A peer port for addresses that are only named, never sent to.
NAMED_PORT = 5000


def teredo(server_v4, client_v4, client_port, flags=0x8000):
    """RFC 4380 §4: 2001:0000:<server>:<flags>:<port ^ 0xffff>:<client ^ 0xffffffff>."""
    raw = (b"\x20\x01\x00\x00" + socket.inet_aton(server_v4) + struct.pack("!HH", flags, client_port ^ 0xFFFF)
           + bytes(b ^ 0xFF for b in socket.inet_aton(client_v4)))
    return socket.inet_ntop(socket.AF_INET6, raw)


TEREDO_10_0_0_1 = teredo("65.54.227.120", "10.0.0.1", 40000)
assert TEREDO_10_0_0_1 == "2001:0:4136:e378:8000:63bf:f5ff:fffe", TEREDO_10_0_0_1

REFUSED_V4 = [
    "0.0.0.1", "10.0.0.1", "10.255.255.255", "100.64.0.1", "127.1.2.3",
    "169.254.169.254", "172.16.0.1", "172.31.255.254", "192.0.0.1", "192.0.2.1",
    "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.51.100.1", "203.0.113.1",
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
]
REFUSED_V6 = [
    "::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "::127.0.0.1", "::10.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::1", "2002:7f00:1::1", "2002:a00:1::1", TEREDO_10_0_0_1,
    "fc00::1", "fd12:3456::1", "fe80::1", "fec0::1", "ff02::1", "2001:db8::1", "100::1",
]
# Public IPv6 addresses: on an IPv4 allocation they get 443 (RFC 8656
# §9.1/§10.2 family mismatch), not 403. Named only.
PUBLIC_V6 = ["2001:4860:4860::8888", "2606:4700:4700::1111"]


def port_outside_window():
    """A 127.0.0.1 port that is not a relayed address (not in the window)."""
    p = gh.free_port()
    assert not (G.port_min <= p <= G.port_max), p
    return p


def port_inside_window(avoid=()):
    """A port in the relay window that no allocation holds right now: we
    can bind it ourselves (the daemon's relay sockets would hold it), and
    release it again at once."""
    for p in range(G.port_max, G.port_min - 1, -1):
        if p in avoid:
            continue
        t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            t.close()
    raise AssertionError("no free port in the relay window")


def refused_peers():
    """(label, (ip, port)) for every refused address of the brief."""
    peers = [("127.0.0.1 (not relayed)", ("127.0.0.1", port_outside_window())),
             ("127.0.0.1 (relay window, no allocation)", ("127.0.0.1", port_inside_window()))]
    peers += [(ip, (ip, NAMED_PORT)) for ip in REFUSED_V4 + REFUSED_V6]
    return peers


def own_service_peers():
    return [("udp/tcp port", ("127.0.0.1", G.port)),
            ("tls port", ("127.0.0.1", G.tls_port)),
            ("signaling port", ("127.0.0.1", G.signaling_port)),
            ("admin port", ("127.0.0.1", G.admin_port))]


def new_client(transport="udp", gh_=None, **kw):
    g = gh_ or G
    port = g.tls_port if transport == "tls" else g.port
    return TurnClient(g.host, port, transport, "bench", "secret", **kw)


def allocated(transport="udp", gh_=None):
    """A client with a fresh allocation; asserts success and that the
    relayed address is 127.0.0.1 inside the configured window."""
    g = gh_ or G
    c = new_client(transport, g)
    try:
        r = c.allocate()
        assert r is not None, "Allocate over %s: no answer" % transport
        assert r.ok, "Allocate over %s: %r" % (transport, r)
        assert c.relayed is not None, "Allocate success without XOR-RELAYED-ADDRESS: %r" % r
        ip, port = c.relayed
        assert ip == "127.0.0.1" and g.port_min <= port <= g.port_max, \
            "relayed address %s:%d outside 127.0.0.1:%d-%d" % (ip, port, g.port_min, g.port_max)
    except BaseException:
        c.close()
        raise
    return c


def close_all(*clients):
    for c in clients:
        if c is not None:
            c.close()


def code_of(resp):
    return "no answer" if resp is None else resp.code


def expect(resp, code, what):
    assert resp is not None, "%s: no answer (expected %d)" % (what, code)
    assert resp.code == code, "%s: got %r (expected %d)" % (what, resp, code)


def assert_nothing(sock, seconds, what):
    sock.settimeout(seconds)
    try:
        data, src = sock.recvfrom(65536)
    except socket.timeout:
        return
    raise AssertionError("%s: received %d bytes from %s: %r" % (what, len(data), src, data[:64]))


def assert_alive(g=None):
    g = g or G
    assert g.alive(), "daemon not alive; log tail:\n%s" % gh.tail(g.log())


# ------------------------------------------------------------ refusals

def other_spellings_of(relayed):
    """A relayed address (IPv4) spelled as IPv6: still refused (403) on
    an IPv4 allocation, never an alias of the relay exception."""
    ip, port = relayed
    v4 = socket.inet_aton(ip)
    mapped = socket.inet_ntop(socket.AF_INET6, b"\0" * 10 + b"\xff\xff" + v4)
    compat = socket.inet_ntop(socket.AF_INET6, b"\0" * 12 + v4)
    nat64 = socket.inet_ntop(socket.AF_INET6, bytes.fromhex("0064ff9b") + b"\0" * 8 + v4)
    sixto4 = socket.inet_ntop(socket.AF_INET6, b"\x20\x02" + v4 + b"\0" * 10)
    return [("relayed address as %s" % kind, (addr, port))
            for kind, addr in (("IPv4-mapped", mapped), ("IPv4-compatible", compat),
                               ("NAT64", nat64), ("6to4", sixto4))]


def test_refused_create_permission():
    a = allocated()
    b = None
    try:
        wrong = []
        b = allocated()
        for label, peer in refused_peers() + own_service_peers() + other_spellings_of(b.relayed):
            r = a.create_permission([peer])
            if r is None or r.code != 403:
                wrong.append("%s [%s]:%d -> %s" % (label, peer[0], peer[1], code_of(r)))
        assert not wrong, "CreatePermission not refused with 403:\n  " + "\n  ".join(wrong)
        # Positive control: the same allocation can still get a 200, so the
        # 403s above were decisions about the addresses, not a broken
        # allocation.
        expect(a.create_permission([b.relayed]), 200, "CreatePermission to a relayed address")
        assert_alive()
    finally:
        close_all(a, b)


def test_refused_channel_bind():
    a = allocated()
    b = None
    try:
        wrong = []
        ch = 0x4000
        b = allocated()
        for label, peer in refused_peers() + own_service_peers() + other_spellings_of(b.relayed):
            r = a.channel_bind(ch, peer)
            if r is None or r.code != 403:
                wrong.append("%s [%s]:%d ch 0x%04x -> %s" % (label, peer[0], peer[1], ch, code_of(r)))
            ch += 1
        assert not wrong, "ChannelBind not refused with 403:\n  " + "\n  ".join(wrong)
        expect(a.channel_bind(ch, b.relayed), 200, "ChannelBind to a relayed address")
        assert_alive()
    finally:
        close_all(a, b)


def test_public_v6_on_v4_allocation_is_443():
    a = allocated()
    try:
        wrong = []
        for i, ip in enumerate(PUBLIC_V6):
            r = a.create_permission([(ip, NAMED_PORT)])
            if r is None or r.code != 443:
                wrong.append("CreatePermission [%s] -> %s" % (ip, code_of(r)))
            r = a.channel_bind(0x4100 + i, (ip, NAMED_PORT))
            if r is None or r.code != 443:
                wrong.append("ChannelBind [%s] -> %s" % (ip, code_of(r)))
        assert not wrong, "public IPv6 peers on an IPv4 allocation (expected 443):\n  " + "\n  ".join(wrong)
    finally:
        a.close()


def test_several_peers_one_refused():
    a = allocated()
    try:
        for peers in ([("8.8.8.8", NAMED_PORT), ("10.0.0.1", NAMED_PORT)],
                      [("10.0.0.1", NAMED_PORT), ("8.8.8.8", NAMED_PORT)],
                      [("8.8.8.8", NAMED_PORT), ("8.8.4.4", NAMED_PORT), ("::ffff:127.0.0.1", NAMED_PORT)]):
            expect(a.create_permission(peers), 403,
                   "CreatePermission with %s" % ", ".join("%s:%d" % p for p in peers))
        # The refused peer as the 17th, 33rd, 41st XOR-PEER-ADDRESS: every
        # peer of the request is judged, however many there are (or the
        # request is refused as a whole for carrying too many).
        for n in (16, 32, 40):
            peers = [("8.8.%d.%d" % (i // 200, 1 + i % 200), NAMED_PORT) for i in range(n)]
            peers.append(("10.0.0.1", NAMED_PORT))
            r = a.create_permission(peers)
            assert r is not None and r.code != 200 and r.code in (400, 403, 508), \
                "CreatePermission with %d public peers then 10.0.0.1: %r (expected 403, or 400/508 for too many)" % (
                    n, r)
    finally:
        a.close()


def test_several_peers_one_refused_installs_none():
    """The 403 is for the whole request: the allowed peer in it gets no
    permission either. Observed with a relayed address as the allowed peer,
    so nothing leaves 127.0.0.1."""
    a = allocated()
    b = allocated()
    try:
        expect(a.create_permission([b.relayed, ("10.0.0.1", NAMED_PORT)]), 403,
               "CreatePermission [B relayed, 10.0.0.1]")
        expect(b.create_permission([a.relayed]), 200, "B CreatePermission to A")
        b.send_indication(a.relayed, b"must-not-arrive")
        got = a.recv_data(1.0)
        assert got is None, "A received data from B although its CreatePermission was refused: %r" % (got,)
        # Positive control: with the permission, the same datagram arrives.
        expect(a.create_permission([b.relayed]), 200, "A CreatePermission to B")
        b.send_indication(a.relayed, b"now-it-arrives")
        got = a.recv_data(2.0)
        assert got == ("data", b.relayed, b"now-it-arrives"), "A after permission: %r" % (got,)
    finally:
        close_all(a, b)


def test_operator_deny_and_allow_peers():
    cfg = {"turn": {"deny_peers": ["8.8.8.0/24", "10.1.9.0/24"], "allow_peers": ["10.1.0.0/16"],
                    "limits": {"auth_failures_per_source": 1000}}}
    with gh.Gatehouse(ARGS.gatehouse, config=cfg) as g:
        a = allocated(gh_=g)
        try:
            cases = [("8.8.8.8", 403), ("8.8.4.4", 200), ("10.1.2.3", 200), ("10.2.0.1", 403),
                     ("10.1.9.1", 403),  # deny wins over allow
                     ("127.0.0.1", 403)]  # allow_peers does not open loopback
            wrong = []
            ch = 0x4000
            for ip, want in cases:
                r = a.create_permission([(ip, NAMED_PORT)])
                if r is None or r.code != want:
                    wrong.append("CreatePermission %s -> %s (expected %d)" % (ip, code_of(r), want))
                r = a.channel_bind(ch, (ip, NAMED_PORT))
                if r is None or r.code != want:
                    wrong.append("ChannelBind %s ch 0x%04x -> %s (expected %d)" % (ip, ch, code_of(r), want))
                ch += 1
            assert not wrong, "operator allow/deny lists:\n  " + "\n  ".join(wrong)
            assert g.alive()
        finally:
            a.close()


# ------------------------------------------------------ relay to relay

def relay_to_relay(ta, tb):
    a = allocated(ta)
    b = allocated(tb)
    try:
        expect(a.create_permission([b.relayed]), 200, "A(%s) CreatePermission to B's relayed address" % ta)
        # Both filters of RFC 8656 §9: B has no permission for A yet, so
        # A's datagram is dropped at B's relay; B has no permission for A,
        # so B's Send is dropped before it leaves.
        a.send_indication(b.relayed, b"B has no permission for A")
        got = b.recv_data(0.5)
        assert got is None, "B received %r from A without a permission for A" % (got,)
        b.send_indication(a.relayed, b"B sends without permission")
        got = a.recv_data(0.5)
        assert got is None, "A received %r although B had no permission to send to A" % (got,)
        expect(b.create_permission([a.relayed]), 200, "B(%s) CreatePermission to A's relayed address" % tb)

        a.send_indication(b.relayed, b"hello from A")
        got = b.recv_data(2.0)
        assert got == ("data", a.relayed, b"hello from A"), "B got %r (expected Data from %s)" % (got, a.relayed)
        b.send_indication(a.relayed, b"hello from B")
        got = a.recv_data(2.0)
        assert got == ("data", b.relayed, b"hello from B"), "A got %r (expected Data from %s)" % (got, b.relayed)

        expect(a.channel_bind(0x4001, b.relayed), 200, "A ChannelBind 0x4001 to B")
        expect(b.channel_bind(0x4002, a.relayed), 200, "B ChannelBind 0x4002 to A")
        # Odd lengths exercise ChannelData padding on streams both ways.
        for payload in (b"x", b"chan A->B", b"\x00" * 1201):
            a.send_channel(0x4001, payload)
            got = b.recv_data(2.0)
            assert got == ("channel", 0x4002, payload), \
                "B got %r (expected ChannelData 0x4002, %d bytes)" % (got and got[:2], len(payload))
        for payload in (b"yz", b"chan B->A!", b"\xff" * 999):
            b.send_channel(0x4002, payload)
            got = a.recv_data(2.0)
            assert got == ("channel", 0x4001, payload), \
                "A got %r (expected ChannelData 0x4001, %d bytes)" % (got and got[:2], len(payload))
        # A Send indication toward a peer that has a channel back arrives
        # as ChannelData (RFC 8656 §11.6 / §12.6).
        a.send_indication(b.relayed, b"send-to-channel")
        got = b.recv_data(2.0)
        assert got == ("channel", 0x4002, b"send-to-channel"), "B got %r" % (got,)
        assert_alive()
    finally:
        close_all(a, b)


def test_relay_to_relay_udp():
    relay_to_relay("udp", "udp")


def test_relay_to_relay_tcp():
    relay_to_relay("tcp", "tcp")


def test_relay_to_relay_udp_tls():
    relay_to_relay("udp", "tls")


def test_exception_is_exact_port():
    """A's permission for 127.0.0.1 (installed via B's relayed address)
    does not reach, nor accept traffic from, other ports of 127.0.0.1."""
    a = allocated()
    b = allocated()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    w = None
    try:
        s.bind(("127.0.0.1", port_outside_window()))
        sa = s.getsockname()
        # A second plain socket inside the relay window (not an allocation).
        w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        w.bind(("127.0.0.1", port_inside_window(avoid=(a.relayed[1], b.relayed[1]))))
        wa = w.getsockname()
        expect(a.create_permission([b.relayed]), 200, "A CreatePermission to B")
        expect(b.create_permission([a.relayed]), 200, "B CreatePermission to A")

        a.send_indication(sa, b"to-plain-socket")
        a.send_indication(wa, b"to-plain-socket-in-window")
        assert_nothing(s, 1.0, "plain socket %s:%d (Send indication from A)" % sa)
        assert_nothing(w, 0.2, "plain socket in the relay window %s:%d (Send indication from A)" % wa)
        w.sendto(b"from-plain-socket-in-window", a.relayed)
        got = a.recv_data(0.7)
        assert got is None, "A received %r from a plain socket in the relay window" % (got,)

        s.sendto(b"from-plain-socket", a.relayed)
        got = a.recv_data(1.0)
        assert got is None, "A received %r from a plain socket on 127.0.0.1" % (got,)

        # A channel to the plain socket is refused and, of course, nothing
        # is delivered through it.
        r = a.channel_bind(0x4010, sa)
        expect(r, 403, "A ChannelBind to a plain 127.0.0.1 socket")
        a.send_channel(0x4010, b"via-refused-channel")
        assert_nothing(s, 0.5, "plain socket (ChannelData on a refused channel)")

        # Positive control: B's relayed address, same IP, does get through.
        b.send_indication(a.relayed, b"from-B")
        got = a.recv_data(2.0)
        assert got == ("data", b.relayed, b"from-B"), "A from B: %r" % (got,)
        assert_alive()
    finally:
        s.close()
        if w is not None:
            w.close()
        close_all(a, b)


def test_exception_ends_with_the_allocation():
    a = allocated()
    b = allocated()
    s = None
    try:
        expect(a.create_permission([b.relayed]), 200, "A CreatePermission to B")
        expect(a.channel_bind(0x4020, b.relayed), 200, "A ChannelBind to B")
        old = b.relayed
        r = b.refresh(0)
        expect(r, 200, "B Refresh LIFETIME 0")
        assert r.lifetime == 0, "Refresh 0 answered LIFETIME %r" % r.lifetime

        # Best effort: take B's old port ourselves (the daemon should have
        # closed it). If we get it, nothing of A's may reach it.
        deadline = time.monotonic() + 1.0
        while s is None and time.monotonic() < deadline:
            t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                t.bind(old)
                s = t
            except OSError:
                t.close()
                time.sleep(0.1)
        a.send_indication(old, b"to-deleted-relay")
        a.send_channel(0x4020, b"channel-to-deleted-relay")
        if s is not None:
            assert_nothing(s, 1.0, "socket now bound on B's old relayed address %s:%d" % old)
        else:
            print("note: could not bind B's old relayed port %d after deletion "
                  "(the daemon still holds it?)" % old[1], flush=True)
        assert_alive()
        expect(a.create_permission([old]), 403, "CreatePermission to a deleted relayed address")
        expect(a.channel_bind(0x4021, old), 403, "ChannelBind to a deleted relayed address")
        # s must not receive the refused-channel data either.
        if s is not None:
            assert_nothing(s, 0.3, "old relayed port after refusals")
    finally:
        if s is not None:
            s.close()
        close_all(a, b)


def main():
    global G
    cfg = {"turn": {"limits": {"auth_failures_per_source": 1000, "allocations_per_user": 64}}}
    code = 1
    with gh.Gatehouse(ARGS.gatehouse, config=cfg) as g:
        G = g
        try:
            gh.run_tests([
                test_refused_create_permission,
                test_refused_channel_bind,
                test_public_v6_on_v4_allocation_is_443,
                test_several_peers_one_refused,
                test_several_peers_one_refused_installs_none,
                test_relay_to_relay_udp,
                test_relay_to_relay_tcp,
                test_relay_to_relay_udp_tls,
                test_exception_is_exact_port,
                test_exception_ends_with_the_allocation,
                test_operator_deny_and_allow_peers,
            ])
        except SystemExit as e:  # leave the with normally: stop() is checked
            code = e.code
    sys.exit(code)


if __name__ == "__main__":
    main()
