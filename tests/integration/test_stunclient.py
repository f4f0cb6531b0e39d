#!/usr/bin/python3
"""STUN Binding against Gatehouse: coturn's turnutils_stunclient, and raw
Bindings over UDP, TCP and TLS whose XOR-MAPPED-ADDRESS must be the
client's own socket address (RFC 8489 §14.2), with no SOFTWARE attribute
(a gateway should not advertise its version)."""

import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gh  # noqa: E402

ARGS = None


class LoopbackSniffer:
    """Records the source ports of UDP datagrams sent to one port on lo
    (AF_PACKET, needs root; only observes, sends nothing). Used to learn
    the source port of a client we do not control (turnutils_stunclient
    has no option to choose it)."""

    def __init__(self, dst_port):
        self.dst_port = dst_port
        self.src_ports = set()
        self.sock = None
        self._stop = False
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
            self.sock.bind(("lo", 0))
        except (PermissionError, OSError, AttributeError):
            self.sock = None
        self.thread = None

    def __enter__(self):
        if self.sock is not None:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        return self

    def _run(self):
        while not self._stop:
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            pkt = self.sock.recv(65536)
            if len(pkt) < 20 or pkt[0] >> 4 != 4 or pkt[9] != 17:
                continue
            ihl = (pkt[0] & 0x0F) * 4
            if len(pkt) < ihl + 8:
                continue
            sport, dport = struct.unpack("!HH", pkt[ihl:ihl + 4])
            if dport == self.dst_port and pkt[12:16] == socket.inet_aton("127.0.0.1"):
                self.src_ports.add(sport)

    def __exit__(self, *exc):
        time.sleep(0.2)
        self._stop = True
        if self.thread is not None:
            self.thread.join(2)
        if self.sock is not None:
            self.sock.close()
        return False


def attr_types(resp):
    m = gh.parse_stun(resp)
    assert m is not None, "response is not a well-formed STUN message: %r" % resp[:64]
    return [t for t, _ in m[2]]


def check_response(resp, txid, local):
    m = gh.parse_stun(resp)
    assert m is not None, "response is not a well-formed STUN message: %r" % resp[:64]
    msg_type, rtxid, attrs = m
    assert msg_type == gh.STUN_BINDING_SUCCESS, "expected Binding success 0x0101, got 0x%04x" % msg_type
    assert rtxid == txid, "transaction id not echoed"
    types = [t for t, _ in attrs]
    assert gh.ATTR_SOFTWARE not in types, "response carries a SOFTWARE attribute: %r" % [
        v for t, v in attrs if t == gh.ATTR_SOFTWARE]
    xors = [v for t, v in attrs if t == gh.ATTR_XOR_MAPPED_ADDRESS]
    assert len(xors) == 1, "expected exactly one XOR-MAPPED-ADDRESS, attributes: %s" % [
        "0x%04x" % t for t in types]
    mapped = gh.decode_xor_address(xors[0], txid)
    assert mapped == tuple(local), "XOR-MAPPED-ADDRESS %r != client address %r" % (mapped, tuple(local))
    assert gh.fingerprint_ok(resp), "FINGERPRINT present but wrong or not last"


def test_turnutils_stunclient():
    with gh.Gatehouse(ARGS.gatehouse) as g:
        with LoopbackSniffer(g.port) as sniff:
            p = subprocess.run(["turnutils_stunclient", "-p", str(g.port), g.host],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        out = p.stdout.decode("utf-8", "replace")
        print(out.strip())
        assert p.returncode == 0, "turnutils_stunclient exited %d:\n%s" % (p.returncode, out)
        found = re.findall(r"UDP reflexive addr: ([0-9.]+):(\d+)", out)
        assert found, "no 'UDP reflexive addr' in turnutils_stunclient output:\n%s" % out
        ips = {ip for ip, _ in found}
        ports = {int(port) for _, port in found}
        assert ips == {"127.0.0.1"}, "reflexive address IP %s, expected 127.0.0.1" % ips
        assert len(ports) == 1, "several reflexive ports printed: %s" % ports
        port = ports.pop()
        if sniff.sock is not None:
            assert sniff.src_ports, "sniffer saw no datagram to the TURN port"
            assert port in sniff.src_ports, \
                "reflexive port %d is not the client's source port (saw %s)" % (port, sorted(sniff.src_ports))
        else:
            print("note: no AF_PACKET sniffer (not root); checking the port range only")
            assert port != g.port and 1024 <= port <= 65535, "implausible reflexive port %d" % port
        assert g.alive(), "daemon not alive after turnutils_stunclient"


def test_binding_udp_raw():
    with gh.Gatehouse(ARGS.gatehouse) as g:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", 0))
            s.settimeout(2.0)
            for _ in range(3):  # a fresh transaction each time, same socket
                req, txid = gh.build_stun(gh.STUN_BINDING_REQUEST)
                s.sendto(req, (g.host, g.port))
                resp, src = s.recvfrom(65536)
                assert src == (g.host, g.port), "answer came from %r, not the server port" % (src,)
                check_response(resp, txid, s.getsockname())
        finally:
            s.close()


def _stream_binding(g, port, use_tls):
    s = socket.create_connection((g.host, port), timeout=3.0)
    try:
        if use_tls:
            s = gh.tls_client_context().wrap_socket(s, server_hostname="localhost")
            assert s.version() in ("TLSv1.2", "TLSv1.3"), "TLS version %s < 1.2" % s.version()
        local = s.getsockname()[:2]
        # Two requests in one write, then one request split in two writes:
        # the server must frame STUN over a stream by the length field
        # (RFC 8489 §6.2.2), not by read() boundaries.
        r1, t1 = gh.build_stun(gh.STUN_BINDING_REQUEST)
        r2, t2 = gh.build_stun(gh.STUN_BINDING_REQUEST)
        s.sendall(r1 + r2)
        check_response(gh.recv_stun_stream(s, 3.0), t1, local)
        check_response(gh.recv_stun_stream(s, 3.0), t2, local)
        r3, t3 = gh.build_stun(gh.STUN_BINDING_REQUEST)
        s.sendall(r3[:7])
        time.sleep(0.2)
        s.sendall(r3[7:])
        check_response(gh.recv_stun_stream(s, 3.0), t3, local)
    finally:
        s.close()


def test_binding_tcp_raw():
    with gh.Gatehouse(ARGS.gatehouse) as g:
        mapped, local, resp = gh.stun_binding_stream(g.host, g.port, use_tls=False)
        assert mapped == tuple(local), "XOR-MAPPED-ADDRESS %r != client address %r" % (mapped, local)
        assert gh.ATTR_SOFTWARE not in attr_types(resp), "response carries SOFTWARE"
        _stream_binding(g, g.port, False)
        assert g.alive()


def test_binding_tls_raw():
    with gh.Gatehouse(ARGS.gatehouse) as g:
        mapped, local, resp = gh.stun_binding_stream(g.host, g.tls_port, use_tls=True)
        assert mapped == tuple(local), "XOR-MAPPED-ADDRESS %r != client address %r" % (mapped, local)
        assert gh.ATTR_SOFTWARE not in attr_types(resp), "response carries SOFTWARE"
        _stream_binding(g, g.tls_port, True)
        assert g.alive()


if __name__ == "__main__":
    ARGS = gh.main_args()
    gh.run_tests([
        test_turnutils_stunclient,
        test_binding_udp_raw,
        test_binding_tcp_raw,
        test_binding_tls_raw,
    ])
