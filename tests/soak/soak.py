#!/usr/bin/python3
"""Bounded soak test of one Gatehouse daemon (issue 6).

One daemon (gh.Gatehouse, as in the integration tests) serves five kinds
of traffic at once for --duration seconds, while this script samples the
daemon's resident memory, open descriptors and threads from /proc every
--interval seconds. At the end it stops the traffic, lets the daemon
settle, stops the daemon and judges the run:

  - the daemon was alive at every sample (running, and answering a STUN
    Binding) and exits 0 on SIGTERM within the harness's stop();
  - memory is flat after the warm-up (--warmup, a fraction of the
    duration): the least-squares slope of the RSS samples taken after the
    warm-up, extrapolated over that window, stays below
    max(2 MiB, 5 % of the RSS at the end of the warm-up);
  - descriptors come back: once the traffic stopped and a short settle
    passed, the daemon holds at most FD_TOLERANCE more than right after
    its start;
  - every churner made progress, and functional errors (logins that should
    succeed, calls without media, failed allocation cycles, ...) stay
    below 1 % of its attempts.

Design. Every churner is one function that runs in its own thread until
the shared deadline (or Ctrl-C) and counts what it did in a Stats object:

  churn_logins     WebSocket clients connect, log in (mostly with JWTs,
                   which are cheap; a password login every few seconds,
                   since argon2 is not), ping, ask for contacts, and leave:
                   a clean close, a dropped connection (FIN) or a reset.
  churn_calls      alice and bob (JWT users) log in, alice calls bob, two
                   aiortc peers exchange offer and answer through the
                   signaling with the ICE servers Gatehouse hands out, send
                   data-channel messages and audio for MEDIA_S seconds
                   relay to relay, then hang up. One call at a time.
  churn_turn       static user "bench": two allocations (UDP, or TCP and
                   UDP), permissions both ways, a channel one way, a few
                   datagrams both ways, then Refresh 0 / close.
  churn_malformed  random and mutated bytes to the TURN UDP, TCP and TLS
                   ports, truncated STUN, lying ChannelData, garbage
                   WebSocket frames and JSON, bad HTTP to the signaling
                   and admin listeners, at most MALFORMED_PER_S.
  churn_uclient    short bursts of coturn's turnutils_uclient over TCP
                   (when installed).

Memory is read as the lowest VmRSS of a short burst of reads (see
proc_burst()): every password check runs argon2id with 64 MiB of working
memory for a few tenths of a second, which a single read may catch.

The async churners (logins, calls) run their own event loop in their
thread. Every loop is bounded in count (a cap derived from the duration)
and in time (the deadline; each step has a timeout), so the script ends
by itself. Traffic goes to 127.0.0.1 only. The daemon is stopped by the
harness's context manager on every path, Ctrl-C and SIGTERM included.

Run it with /usr/bin/python3 (Debian's aiortc and aiohttp), as root like
the integration tests; see README.md.
"""

import argparse
import asyncio
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import gh  # noqa: E402
import sigclient as sc  # noqa: E402
import turnclient as tc  # noqa: E402
# rtc_config(), ice_connections(), relay_candidates(); importing it also
# disables aioice host gathering (TESTING.md), which is repeated below so
# that this file does not depend on that side effect.
import test_call_e2e as e2e  # noqa: E402

import aioice.ice  # noqa: E402
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError  # noqa: E402

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: []

# ------------------------------------------------------------ knobs
# Rates are deliberately moderate: the machine has two cores and other
# work (a fuzzer) may hold one of them.

TOKEN_WORKERS = 3            # concurrent JWT login loops
TOKEN_PAUSE_S = (0.2, 0.6)   # pause between two cycles of one worker
PASSWORD_PAUSE_S = 2.5       # argon2id costs ~0.3 s of daemon CPU per login
CALL_PAUSE_S = 1.0           # between two calls
CALL_TIMEOUT_S = 60          # one whole call, set-up to hang-up
MEDIA_S = 3.0                # media time per call
DC_PERIOD_S = 0.1            # one data-channel message every ...
AUDIO_FRAMES_PER_S = 50      # aiortc sends 20 ms frames
MIN_AUDIO_SHARE = 0.25       # at least this share of the frames must arrive
TURN_PAUSE_S = 0.2           # between two allocation cycles of one thread
TURN_DATAGRAMS = 3           # each way, per cycle
MALFORMED_PER_S = 20         # at most this many malformed items per second
UCLIENT_EVERY_S = 20         # one turnutils_uclient burst every ...
UCLIENT_TIMEOUT_S = 40
SETTLE_MIN_S = 3.0           # after the traffic stops, before the fd check
SETTLE_MAX_S = 15.0          # ... and how long to wait for fds to come back
FD_TOLERANCE = 5
RSS_READS = 8                # one sample = this many reads of VmRSS ...
RSS_READ_GAP_S = 0.2         # ... this far apart (see proc_burst())
RSS_MIN_LIMIT_KIB = 2048     # max(2 MiB, 5 % of the warm-up RSS)
RSS_SHARE_LIMIT = 0.05
ERROR_SHARE_LIMIT = 0.01

TOKEN_USERS = ["tok%d" % i for i in range(6)]
PASSWORD_USERS = ["pw%d" % i for i in range(3)]
CALLER, CALLEE = "alice", "bob"
ISSUER, AUDIENCE = "https://idp.soak.test", "gatehouse"


# ------------------------------------------------------------ bookkeeping

class Stats:
    """What one churner did: count (attempts of its unit), errors
    (functional failures among them) and the first distinct messages."""

    def __init__(self, name, unit):
        self.name = name
        self.unit = unit
        self.count = 0
        self.errors = 0
        self.extra = {}          # churner-specific counters, for the summary
        self.messages = {}       # first line of an error -> times seen
        self.crashed = None
        self.lock = threading.Lock()

    def ok(self, n=1):
        with self.lock:
            self.count += n

    def fail(self, why, n=1):
        line = (str(why).strip().splitlines() or [type(why).__name__])[0][:200]
        if isinstance(why, BaseException):
            line = "%s: %s" % (type(why).__name__, line)
        with self.lock:
            self.count += n
            self.errors += n
            if line in self.messages or len(self.messages) < 8:
                self.messages[line] = self.messages.get(line, 0) + 1

    def bump(self, key, n=1):
        with self.lock:
            self.extra[key] = self.extra.get(key, 0) + n

    def snapshot(self):
        with self.lock:
            return self.count, self.errors


class Soak:
    """The shared context every churner gets."""

    def __init__(self, g, args, tokens, passwords):
        self.g = g
        self.args = args
        self.tokens = tokens           # user -> JWT
        self.passwords = passwords     # user -> password (local, no TOTP)
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.duration
        self.stats = {}
        for name, unit in (("login", "logins"), ("call", "calls"), ("alloc", "allocations"),
                           ("malformed", "items"), ("uclient", "bursts")):
            self.stats[name] = Stats(name, unit)

    def running(self):
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def iterations(self, max_per_s):
        """0, 1, 2, ... while running, at most duration x max_per_s + 10
        times: every churner loop is bounded in count as well as time."""
        cap = int(self.args.duration * max_per_s) + 10
        for i in range(cap):
            if not self.running():
                return
            yield i

    def nap(self, seconds):
        """Sleeps, but wakes up at once when the soak is stopped."""
        self.stop.wait(max(0.0, min(seconds, self.deadline - time.monotonic())))


# ------------------------------------------------------------ JWT set-up

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def openssl(*args, data=None):
    return subprocess.run(["openssl"] + list(args), input=data, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=True, timeout=60).stdout


def make_jwt_identity(g, users, lifetime_s):
    """An RSA key and its JWKS in g.workdir, the identity config (local
    users without MFA + the JWT backend), and one RS256 token per user,
    valid for lifetime_s. Tokens carry groups ["team"]; Gatehouse keeps no
    record of used tokens, so one token serves every login of its user."""
    key = os.path.join(g.workdir, "jwt-rsa.pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
    mod = openssl("rsa", "-in", key, "-noout", "-modulus").decode().strip().split("=", 1)[1]
    jwks = {"keys": [{"kty": "RSA", "kid": "soak1", "use": "sig", "alg": "RS256",
                      "n": b64u(bytes.fromhex(mod)), "e": b64u(b"\x01\x00\x01")}]}
    jpath = os.path.join(g.workdir, "jwks.json")
    with open(jpath, "w") as f:
        json.dump(jwks, f)
    os.chmod(jpath, 0o644)
    g.config["identity"] = {"mfa": "optional", "backends": [
        {"type": "local"},
        {"type": "jwt", "issuer": ISSUER, "audience": AUDIENCE, "jwks_file": jpath}]}
    now = int(time.time())
    tokens = {}
    for u in users:
        header = {"alg": "RS256", "typ": "JWT", "kid": "soak1"}
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": u, "groups": ["team"],
                  "iat": now - 5, "exp": now + lifetime_s}
        si = (b64u(json.dumps(header, separators=(",", ":")).encode()) + "." +
              b64u(json.dumps(claims, separators=(",", ":")).encode()))
        tokens[u] = si + "." + b64u(openssl("dgst", "-sha256", "-sign", key, data=si.encode()))
    return tokens


def build_gatehouse(args):
    """The daemon, not started yet: policy, identity, users, tokens."""
    cfg = {
        # Malformed traffic makes TURN authentication failures from
        # 127.0.0.1, the only source every churner shares: with the
        # default (10 in 10 s) the relay would stop answering everyone.
        # TCP and TLS connections too: all of them count against one
        # per-source limit (32 by default).
        "turn": {"limits": {"auth_failures_per_source": 1000000000,
                            "connections_per_source": 4096}},
        # info, as in production; debug would log every packet.
        "log": {"level": "info"},
    }
    g = None
    for _ in range(60):
        # Parallel test runs may hold every relay port window for a while.
        try:
            g = gh.Gatehouse(args.gatehouse, config=cfg)
            break
        except RuntimeError as e:
            if "no free relay port window" not in str(e):
                raise
            print("waiting for a free relay port window ...", flush=True)
            time.sleep(5)
    if g is None:
        raise RuntimeError("no free relay port window for 5 minutes")
    everyone = TOKEN_USERS + PASSWORD_USERS + [CALLER, CALLEE]
    ppath = os.path.join(g.workdir, "policy.json")
    sc.write_policy(ppath, [{"name": "team", "from": "group:team", "to": "group:team",
                             "media": ["audio", "video", "data"], "action": "allow"}],
                    {"team": everyone})
    os.chmod(ppath, 0o644)
    g.config["policy"] = {"file": ppath}
    tokens = make_jwt_identity(g, TOKEN_USERS + [CALLER, CALLEE], int(args.duration) + 3600)
    sc.write_config(g)
    passwords = {}
    for u in PASSWORD_USERS:
        pw = "soak-%s-%s" % (u, b64u(os.urandom(9)))
        sc.create_user(g, u, pw, groups=["team"], with_totp=False)
        passwords[u] = pw
    return g, tokens, passwords


# ------------------------------------------------------------ churner 1: logins

def _drop_connection(c, reset):
    """Ends c's TCP connection under aiohttp's feet, without a WebSocket
    close: a FIN, or (reset) an RST through SO_LINGER 0."""
    conn = c.ws._response.connection if c.ws is not None else None
    tr = conn.transport if conn is not None else None
    if tr is None:
        return
    if reset:
        sock = tr.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    tr.abort()


async def _login_cycle(s, name, token=None, password=None):
    """connect, log in, ping, contacts, leave (three ways). Raises on any
    functional failure."""
    st = s.stats["login"]
    c = sc.SigClient(sc.ws_url(s.g), name="soak-" + name)
    await c.connect()
    how = random.choice(("close", "close", "fin", "rst"))
    try:
        if token is not None:
            r = await c.login(token=token)
        else:
            r = await c.login(name, password)
        if r.get("type") != "login.ok" or r.get("user") != name:
            raise AssertionError("login of %s answered %s" % (name, json.dumps(r)[:160]))
        await c.ping()
        r = await c.request({"type": "contacts"})
        if r.get("type") != "contacts.ok" or not r.get("contacts"):
            raise AssertionError("contacts of %s answered %s" % (name, json.dumps(r)[:160]))
        st.bump("closed " + how)
        if how != "close":
            _drop_connection(c, how == "rst")
    finally:
        await c.close()


async def _login_worker(s, names, kind, pause):
    """Logs names in turn, kind "token" or "password", pause s apart."""
    st = s.stats["login"]
    for i in s.iterations(1.0 / pause[0]):
        name = names[i % len(names)]
        try:
            if kind == "token":
                cycle = _login_cycle(s, name, token=s.tokens[name])
            else:
                cycle = _login_cycle(s, name, password=s.passwords[name])
            await asyncio.wait_for(cycle, 20)
            st.bump(kind)
            st.ok()
        except (Exception, asyncio.TimeoutError) as e:
            st.fail(e)
        await asyncio.get_running_loop().run_in_executor(None, s.nap, random.uniform(*pause))


def churn_logins(s):
    """Login churn: TOKEN_WORKERS JWT loops and one password loop."""
    async def main():
        workers = [_login_worker(s, TOKEN_USERS[k::TOKEN_WORKERS], "token", TOKEN_PAUSE_S)
                   for k in range(TOKEN_WORKERS)]
        workers.append(_login_worker(s, PASSWORD_USERS, "password",
                                     (PASSWORD_PAUSE_S, PASSWORD_PAUSE_S * 1.2)))
        await asyncio.gather(*workers)
    asyncio.run(main())


# ------------------------------------------------------------ churner 2: calls

def _assert_relayed(pc, g, who):
    for conn in e2e.ice_connections(pc):
        nominated = dict(conn._nominated)
        assert nominated, "%s: no nominated ICE pair" % who
        for pair in nominated.values():
            lc, rc = pair.local_candidate, pair.remote_candidate
            assert lc.type == "relay" and rc.type == "relay", \
                "%s: selected pair is %s/%s, not relay/relay" % (who, lc.type, rc.type)
            for c in (lc, rc):
                assert c.host == "127.0.0.1" and g.port_min <= c.port <= g.port_max, \
                    "%s: candidate %s:%d is not on the Gatehouse relay" % (who, c.host, c.port)


async def _one_call(s, n):
    """One call with media; returns (messages, audio frames) received.
    Raises AssertionError when something functional fails."""
    g = s.g
    loop = asyncio.get_running_loop()
    ca = cb = pc_a = pc_b = None
    cid = None
    frame_task = None
    try:
        ca = await sc.connect(g, "caller")
        cb = await sc.connect(g, "callee")
        for c, u in ((ca, CALLER), (cb, CALLEE)):
            r = await c.login(token=s.tokens[u])
            assert r.get("type") == "login.ok", "login of %s: %r" % (u, r)
        r = await ca.request({"type": "call", "to": CALLEE, "media": ["audio", "data"]})
        assert r.get("type") == "call.ok", "call refused: %r" % r
        cid = r["call"]
        a_servers = r["ice_servers"]
        await cb.wait_for("incoming", call=cid, timeout=10)
        r2 = await cb.request({"type": "accept", "call": cid})
        assert r2.get("type") == "accept.ok", "accept refused: %r" % r2
        b_servers = r2["ice_servers"]
        await ca.wait_for("accepted", call=cid, timeout=10)

        pc_a = RTCPeerConnection(e2e.rtc_config(a_servers))
        pc_b = RTCPeerConnection(e2e.rtc_config(b_servers))
        received = []
        frames = [0]
        dc_open = loop.create_future()
        remote_track = loop.create_future()
        dc = pc_a.createDataChannel("soak", ordered=True)
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

        @pc_b.on("track")
        def _on_track(track):
            if track.kind == "audio" and not remote_track.done():
                remote_track.set_result(track)

        # Offer and answer travel through Gatehouse (which filters them).
        await pc_a.setLocalDescription(await pc_a.createOffer())
        offer = pc_a.localDescription.sdp
        assert e2e.relay_candidates(offer), "caller gathered no relay candidate"
        await ca.send({"type": "sdp", "call": cid, "sdp": {"type": "offer", "sdp": offer}})
        m = await cb.wait_for("sdp", call=cid, timeout=10)
        await pc_b.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"]["sdp"], type="offer"))
        await pc_b.setLocalDescription(await pc_b.createAnswer())
        answer = pc_b.localDescription.sdp
        assert e2e.relay_candidates(answer), "callee gathered no relay candidate"
        await cb.send({"type": "sdp", "call": cid, "sdp": {"type": "answer", "sdp": answer}})
        m = await ca.wait_for("sdp", call=cid, timeout=10)
        await pc_a.setRemoteDescription(RTCSessionDescription(sdp=m["sdp"]["sdp"], type="answer"))

        await asyncio.wait_for(dc_open, 20)
        track = await asyncio.wait_for(remote_track, 10)

        async def count_frames():
            while True:
                try:
                    await track.recv()
                except MediaStreamError:
                    return
                frames[0] += 1
        frame_task = asyncio.ensure_future(count_frames())

        sent = []
        t_end = loop.time() + MEDIA_S
        i = 0
        while loop.time() < t_end:
            msg = "call %d message %d" % (n, i)
            dc.send(msg)
            sent.append(msg)
            i += 1
            await asyncio.sleep(DC_PERIOD_S)
        for _ in range(50):          # the last messages: up to 5 s more
            if len(received) >= len(sent):
                break
            await asyncio.sleep(0.1)
        got_frames = frames[0]
        assert received == sent, "data channel: %d of %d messages arrived (in order: %s)" % (
            len(received), len(sent), received == sent[:len(received)])
        want = int(MEDIA_S * AUDIO_FRAMES_PER_S * MIN_AUDIO_SHARE)
        assert got_frames >= want, "audio: %d frames in %.1f s, expected at least %d" % (
            got_frames, MEDIA_S, want)
        _assert_relayed(pc_a, g, "caller")
        _assert_relayed(pc_b, g, "callee")

        await ca.send({"type": "hangup", "call": cid})
        h = await cb.wait_for("hangup", call=cid, timeout=10)
        cid = None
        assert h.get("reason") == "hangup", "callee got hangup %r" % h
        return len(received), got_frames
    finally:
        if frame_task is not None:
            frame_task.cancel()
        if cid is not None and ca is not None and not ca.closed:
            try:
                await ca.send({"type": "hangup", "call": cid})
            except Exception:
                pass
        for pc in (pc_a, pc_b):
            if pc is not None:
                try:
                    await asyncio.wait_for(pc.close(), 5)
                except Exception:
                    pass
        for c in (ca, cb):
            if c is not None:
                await c.close()


def churn_calls(s):
    """Call churn: one relayed aiortc call at a time, CALL_PAUSE_S apart."""
    st = s.stats["call"]

    async def main():
        for n in s.iterations(1.0 / CALL_PAUSE_S):
            try:
                msgs, frames = await asyncio.wait_for(_one_call(s, n), CALL_TIMEOUT_S)
                st.bump("dc messages", msgs)
                st.bump("audio frames", frames)
                st.ok()
            except asyncio.TimeoutError:
                st.fail("call did not complete within %d s" % CALL_TIMEOUT_S)
            except Exception as e:
                st.fail(e)
            await asyncio.get_running_loop().run_in_executor(None, s.nap, CALL_PAUSE_S)
    asyncio.run(main())


# ------------------------------------------------------------ churner 3: TURN

def _expect_payloads(client, want, kind, timeout=2.0):
    """Reads relayed payloads until every one of want arrived (any order)."""
    left = set(want)
    deadline = time.monotonic() + timeout
    while left:
        item = client.recv_data(max(0.0, deadline - time.monotonic()))
        if item is None:
            break
        if item[0] == kind:
            left.discard(item[2])
    assert not left, "%d of %d relayed %s payloads missing" % (len(left), len(want), kind)


def _turn_cycle(s, ta, tb, n):
    """Allocations a (transport ta) and b (tb); permissions both ways,
    a channel from a to b, TURN_DATAGRAMS each way; then released."""
    g = s.g
    a = b = None
    try:
        a = tc.TurnClient(g.host, g.port, ta, "bench", "secret")
        b = tc.TurnClient(g.host, g.port, tb, "bench", "secret")
        for c, who in ((a, "a"), (b, "b")):
            r = c.allocate()
            assert r is not None and r.ok, "Allocate %s/%s: %s" % (who, c.transport, _resp(r))
        r = a.create_permission([b.relayed])
        assert r is not None and r.ok, "CreatePermission a->b: %s" % _resp(r)
        r = b.create_permission([a.relayed])
        assert r is not None and r.ok, "CreatePermission b->a: %s" % _resp(r)
        ch = 0x4000 + (n % 0x1000)
        r = a.channel_bind(ch, b.relayed)
        assert r is not None and r.ok, "ChannelBind: %s" % _resp(r)
        out = [b"soak %d a->b %d %s" % (n, i, os.urandom(8).hex().encode()) for i in range(TURN_DATAGRAMS)]
        for p in out:
            a.send_channel(ch, p)
        _expect_payloads(b, out, "data")
        back = [b"soak %d b->a %d %s" % (n, i, os.urandom(8).hex().encode()) for i in range(TURN_DATAGRAMS)]
        for p in back:
            b.send_indication(a.relayed, p)
        _expect_payloads(a, back, "channel")
        if n % 4 == 0:
            r = a.refresh(600)
            assert r is not None and r.ok, "Refresh 600: %s" % _resp(r)
        # Release: Refresh 0 for UDP (in close()), and for a stream either
        # an explicit Refresh 0 or just the end of the connection.
        for c in (a, b):
            if c.stream and n % 2 == 0:
                r = c.refresh(0)
                assert r is not None and r.ok, "Refresh 0 over %s: %s" % (c.transport, _resp(r))
    finally:
        for c in (a, b):
            if c is not None:
                c.close()


def _resp(r):
    return "no answer" if r is None else "%s %r" % (r.code, r.reason)


def churn_turn(s, ta, tb):
    """TURN allocation churn with the static user, one cycle at a time."""
    st = s.stats["alloc"]
    for n in s.iterations(2.0 / TURN_PAUSE_S):
        try:
            _turn_cycle(s, ta, tb, n)
            st.ok(2)
        except Exception as e:
            st.fail(e, 2)     # both allocations of a failed cycle count
        s.nap(TURN_PAUSE_S)


# ------------------------------------------------------------ churner 4: malformed

class ConnectFailed(Exception):
    """The listener did not take the connection: a real error."""


def _connect(port, timeout=2.0):
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as e:
        raise ConnectFailed("connect to %d: %s" % (port, e))


def _drain(sock, timeout=0.3):
    """Reads what the server says until it closes or goes quiet; never
    raises for a reset (closing on garbage is the right answer)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            if not sock.recv(65536):
                return
    except (socket.timeout, OSError):
        return


def _close(sock, reset=False):
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


def _mutate(data, rng):
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not b:
            break
        op = rng.randrange(4)
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        elif op == 2 and len(b) > 20:
            del b[i:i + rng.randint(1, 8)]
        else:
            b[i:i] = os.urandom(rng.randint(1, 8))
    return bytes(b)


def _stun_samples(s, auth):
    """Valid messages to truncate and mutate: a Binding with FINGERPRINT,
    an unauthenticated and an authenticated Allocate (current nonce), a
    ChannelBind and a Send indication."""
    out = [tc.Message(tc.BINDING, tc.REQUEST).encode(fingerprint=True)]
    rt = [(tc.REQUESTED_TRANSPORT, tc.requested_transport_value(17)), (tc.LIFETIME, tc.u32(600))]
    out.append(tc.Message(tc.ALLOCATE, tc.REQUEST, None, rt).encode(fingerprint=True))
    if auth.nonce is not None:
        out.append(auth.build_request(tc.ALLOCATE, rt)[1])
        peer = ("127.0.0.1", s.g.port_min)
        out.append(auth.build_request(tc.CHANNEL_BIND, lambda txid: [
            (tc.CHANNEL_NUMBER, tc.channel_number_value(0x4001)),
            (tc.XOR_PEER_ADDRESS, tc.xor_address(peer[0], peer[1], txid))])[1])
    msg = tc.Message(tc.SEND, tc.INDICATION)
    msg.add(tc.XOR_PEER_ADDRESS, tc.xor_address("127.0.0.1", s.g.port_min, msg.txid))
    msg.add(tc.DATA_ATTR, os.urandom(40))
    out.append(msg.encode())
    return out


def _bad_channeldata(rng):
    ch = rng.choice([0x4000, 0x4001, 0x7FFF, 0x4FFF, rng.randrange(0x4000, 0x8000),
                     rng.randrange(0x8000, 0x10000)])
    payload = os.urandom(rng.randint(0, 64))
    claimed = rng.choice([len(payload) + rng.randint(1, 500), 0xFFFF, max(0, len(payload) - 3)])
    return struct.pack("!HH", ch, claimed & 0xFFFF) + payload


def _udp_item(s, sock, samples, rng):
    kind = rng.randrange(5)
    if kind == 0:
        data = os.urandom(rng.randint(0, 1400))
    elif kind == 1:
        m = rng.choice(samples)
        data = m[:rng.randrange(len(m))]                      # truncated
    elif kind == 2:
        data = _mutate(rng.choice(samples), rng)              # mutated
    elif kind == 3:
        data = _bad_channeldata(rng)
    else:                                                     # length field lies
        m = bytearray(rng.choice(samples))
        struct.pack_into("!H", m, 2, rng.choice([0, 4, 0xFFFC, len(m) + 4, 3]))
        data = bytes(m)
    sock.send(data)


def _tcp_item(s, samples, rng):
    sock = _connect(s.g.port)
    try:
        kind = rng.randrange(4)
        if kind == 0:
            data = os.urandom(rng.randint(1, 3000))
        elif kind == 1:
            data = struct.pack("!HHI", 0x0003, 0xFFFC, tc.MAGIC_COOKIE) + os.urandom(12 + rng.randint(0, 200))
        elif kind == 2:
            data = _bad_channeldata(rng) + os.urandom(rng.randint(0, 100))
        else:
            m = rng.choice(samples)
            data = m[:rng.randrange(len(m))] if rng.random() < 0.5 else _mutate(m, rng)
        sock.sendall(data)
        if rng.random() < 0.5:
            _drain(sock)
    except OSError:
        pass
    finally:
        _close(sock, reset=rng.random() < 0.3)


def _tls_item(s, rng):
    sock = _connect(s.g.tls_port)
    try:
        if rng.random() < 0.5:
            sock.sendall(os.urandom(rng.randint(1, 2000)))
        else:
            # A TLS record header that promises more than follows.
            sock.sendall(b"\x16\x03\x01" + struct.pack("!H", rng.randint(100, 16384)) +
                         os.urandom(rng.randint(0, 60)))
        _drain(sock, 0.2)
    except OSError:
        pass
    finally:
        _close(sock, reset=rng.random() < 0.3)


WS_TEXTS = [
    "not json {", "[1,2,3]", '{"type": 5}', '{"type":"login","user":"x"}', "null", '""',
    '{"type":"sdp","call":"AAAAAAAAAAAAAAAAAAAAAA","sdp":{"type":"offer","sdp":"v=0"}}',
    '{"type":"nosuchtype","id":1}', '{"type":"ping","id":{"x":1}}', '{"a":1,"a":2}',
    '{"type":"ping","x":"\\u0000"}', "[" * 200 + "]" * 200, '{"type":"login","token":"a.b.c"}',
    '{"type":"call","to":"bob","media":[]}', '{"type":"hangup","call":"' + "x" * 300 + '"}',
]


def _ws_item(s, rng):
    try:
        ws = sc.RawWebSocket("127.0.0.1", s.g.signaling_port, timeout=3)
    except (OSError, ConnectionError) as e:
        raise ConnectFailed("WebSocket upgrade: %s" % e)
    try:
        frames = []
        for _ in range(rng.randint(1, 6)):
            k = rng.randrange(8)
            if k <= 2:
                frames.append(ws.frame(rng.choice(WS_TEXTS)))
            elif k == 3:
                frames.append(ws.frame(os.urandom(rng.randint(1, 300)), opcode=0x2))   # binary
            elif k == 4:
                frames.append(ws.frame(os.urandom(rng.randint(1, 50)), opcode=rng.choice([0x0, 0x3, 0xB])))
            elif k == 5:                                    # unmasked client frame
                p = os.urandom(rng.randint(1, 100))
                frames.append(struct.pack("!BB", 0x81, len(p)) + p)
            elif k == 6:                                    # invalid UTF-8 text
                frames.append(ws.frame(b"\xff\xfe" + os.urandom(20)))
            else:                                           # header promising more
                frames.append(struct.pack("!BBQ", 0x81, 0x80 | 127, rng.randint(70000, 1 << 40)) +
                              os.urandom(4 + rng.randint(0, 100)))
        ws.sock.sendall(b"".join(frames))
        if rng.random() < 0.6:
            ws.read_until_closed(0.3)
    except OSError:
        pass
    finally:
        ws.close()


HTTP_JUNK = [
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: !!!\r\nSec-WebSocket-Version: 99\r\n\r\n",
    b"GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /ws HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nabc",
    b"GET / HTTP/1.1\r\n" + b"X-Junk: " + b"A" * 9000 + b"\r\n\r\n",
    b"\x00\x01\x02\x03 HTTP/9.9\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",            # a legitimate page fetch
]


def _http_item(s, port, rng):
    sock = _connect(port)
    try:
        if rng.random() < 0.3:
            sock.sendall(os.urandom(rng.randint(1, 2000)))
        else:
            data = rng.choice(HTTP_JUNK)
            if rng.random() < 0.3:
                data = data[:rng.randrange(1, len(data))]
            sock.sendall(data)
        _drain(sock, 0.3)
    except OSError:
        pass
    finally:
        _close(sock, reset=rng.random() < 0.2)


def _admin_item(s, rng):
    """Bad admin API requests. Logins name users that do not exist, so no
    real account is locked; they are rare (the daemon checks a dummy
    password hash for them too)."""
    k = rng.randrange(10)
    if k >= 7:
        _http_item(s, s.g.admin_port, rng)
        return
    reqs = [
        ("GET", "/api/users", None, {"Authorization": "Bearer " + b64u(os.urandom(24))}),
        ("GET", "/api/nosuchthing", None, {}),
        ("PATCH", "/api/policy", b"{}", {}),
        ("PUT", "/api/policy", b'{"default":"allow"}', {}),
        ("POST", "/api/login", b"{not json", {"Content-Type": "application/json"}),
        ("GET", "/api/health", None, {"Origin": "http://evil.example"}),
        ("GET", "/metrics", None, {}),
    ]
    if rng.random() < 0.1:
        body = json.dumps({"user": "nosuch%d" % rng.randrange(10 ** 6), "password": "x" * 12,
                           "totp": "000000"}).encode()
        reqs = [("POST", "/api/login", body, {"Content-Type": "application/json"})]
    method, path, body, headers = rng.choice(reqs)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", s.g.admin_port, timeout=5)
    except OSError as e:
        raise ConnectFailed("admin: %s" % e)
    try:
        conn.request(method, path, body=body, headers=headers)
        conn.getresponse().read()
    except ConnectionRefusedError as e:
        raise ConnectFailed("admin: %s" % e)
    except (OSError, http.client.HTTPException):
        pass
    finally:
        conn.close()


def churn_malformed(s):
    """Malformed traffic at MALFORMED_PER_S to every listener. Errors are
    only connections the daemon did not take; what it answers (or that it
    closes) is not judged here, only that it stays alive and well."""
    st = s.stats["malformed"]
    rng = random.Random()
    auth = udp = None
    samples = []
    kinds = (["udp"] * 8 + ["tcp"] * 3 + ["tls"] + ["ws"] * 4 + ["http"] + ["admin"] * 3)
    period = 1.0 / MALFORMED_PER_S
    try:
        for i in s.iterations(MALFORMED_PER_S):
            t = time.monotonic()
            if i % 200 == 0:        # fresh nonce and 5-tuple now and then
                for c in (auth, udp):
                    if c is not None:
                        c.close()
                auth = tc.TurnClient(s.g.host, s.g.port, "udp", "bench", "secret")
                auth.challenge()
                samples = _stun_samples(s, auth)
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.connect((s.g.host, s.g.port))
                udp.setblocking(False)
            kind = rng.choice(kinds)
            try:
                if kind == "udp":
                    _udp_item(s, udp, samples, rng)
                    try:
                        while udp.recv(65536):      # whatever came back
                            pass
                    except OSError:
                        pass
                elif kind == "tcp":
                    _tcp_item(s, samples, rng)
                elif kind == "tls":
                    _tls_item(s, rng)
                elif kind == "ws":
                    _ws_item(s, rng)
                elif kind == "http":
                    _http_item(s, s.g.signaling_port, rng)
                else:
                    _admin_item(s, rng)
                st.bump(kind)
                st.ok()
            except ConnectFailed as e:
                st.fail(e)
            s.nap(period - (time.monotonic() - t))
    finally:
        for c in (auth, udp):
            if c is not None:
                c.close()


# ------------------------------------------------------------ churner 5: uclient

def churn_uclient(s):
    """turnutils_uclient bursts over TCP: 4 clients relaying 100 packets
    to each other. Over UDP, uclient leaves one allocation behind per run
    (it lives until its lifetime ends), which would read as a descriptor
    leak; over TCP it ends with the connection."""
    st = s.stats["uclient"]
    exe = shutil.which("turnutils_uclient")
    if exe is None:
        st.extra["skipped"] = 1
        return
    s.nap(5.0)
    for _ in s.iterations(1.0 / UCLIENT_EVERY_S):
        t = time.monotonic()
        cmd = [exe, "-t", "-y", "-m", "4", "-n", "100", "-l", "172", "-z", "20",
               "-u", "bench", "-w", "secret", "-p", str(s.g.port), "127.0.0.1"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        try:
            out, _ = p.communicate(timeout=UCLIENT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            st.fail("turnutils_uclient did not finish within %d s" % UCLIENT_TIMEOUT_S)
        else:
            text = out.decode("utf-8", "replace")
            m = re.search(r"Total lost packets (\d+) \(([\d.]+)%\)", text)
            if p.returncode != 0 or m is None:
                st.fail("turnutils_uclient exit %d: %s" % (p.returncode, gh.tail(text, 2)))
            elif float(m.group(2)) > 1.0:
                st.fail("turnutils_uclient lost %s packets (%s%%)" % (m.group(1), m.group(2)))
            else:
                st.bump("packets lost", int(m.group(1)))
                st.ok()
        s.nap(UCLIENT_EVERY_S - (time.monotonic() - t))


# ------------------------------------------------------------ sampling

def proc_sample(pid):
    """(VmRSS KiB, threads, open fds) of a process, or None when gone."""
    try:
        rss = threads = None
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds = len(os.listdir("/proc/%d/fd" % pid))
        return rss, threads, fds
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None


def proc_burst(pid):
    """RSS_READS reads RSS_READ_GAP_S apart: (lowest RSS, highest RSS,
    threads, fds) of the last read, or None when the process is gone.

    Every password check (signaling and admin logins, also for unknown
    users) runs argon2id with 64 MiB of working memory for a few tenths
    of a second and frees it. One read can land inside such a check; the
    lowest of a burst does not, so the trend is judged on it and the
    highest is only reported."""
    lo = hi = None
    last = None
    for i in range(RSS_READS):
        if i:
            time.sleep(RSS_READ_GAP_S)
        ps = proc_sample(pid)
        if ps is None:
            return None
        last = ps
        lo = ps[0] if lo is None else min(lo, ps[0])
        hi = ps[0] if hi is None else max(hi, ps[0])
    return lo, hi, last[1], last[2]


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (None when gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None


def daemon_answers(g):
    """Running, and a STUN Binding answered (two tries: the machine is
    busy)."""
    if g.proc.poll() is not None:
        return False
    for _ in range(2):
        if gh.stun_binding(g.host, g.port, timeout=2.0) is not None:
            return True
    return False


def metrics(g, names=("gatehouse_sessions", "gatehouse_active_calls",
                      "gatehouse_active_allocations")):
    try:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % g.admin_port,
                                      timeout=5).read().decode()
    except OSError as e:
        return {"error": str(e)}
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in names:
            out[parts[0]] = parts[1]
    return out


def lsq_slope(points):
    """Least-squares slope of [(x, y)]."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


class Sample:
    def __init__(self, t, rss, peak, threads, fds, counts, alive):
        self.t, self.rss, self.peak, self.threads, self.fds = t, rss, peak, threads, fds
        self.counts, self.alive = counts, alive


def print_sample(smp):
    cols = "  ".join("%s %d/%d" % (k, c, e) for k, (c, e) in smp.counts.items())
    print("t=%4.0fs rss %6d KiB (peak %6d) fds %3d thr %2d | %s%s" % (
        smp.t, smp.rss, smp.peak, smp.fds, smp.threads, cols,
        "" if smp.alive else "  DAEMON NOT ANSWERING"), flush=True)


def take_sample(s, pid):
    t = time.monotonic() - s.t0
    ps = proc_burst(pid)
    counts = {k: st.snapshot() for k, st in s.stats.items()}
    if ps is None:
        return None
    alive = daemon_answers(s.g)
    return Sample(t, ps[0], ps[1], ps[2], ps[3], counts, alive)


# ------------------------------------------------------------ the run

def run_churners(s):
    """Starts one thread per churner; a churner that raises is counted as
    crashed (an error) instead of ending the soak."""
    threads = []
    for name, key, fn, args in (("logins", "login", churn_logins, ()),
                                ("calls", "call", churn_calls, ()),
                                ("turn-udp", "alloc", churn_turn, ("udp", "udp")),
                                ("turn-tcp", "alloc", churn_turn, ("tcp", "udp")),
                                ("malformed", "malformed", churn_malformed, ()),
                                ("uclient", "uclient", churn_uclient, ())):
        def body(fn=fn, args=args, st=s.stats[key], name=name):
            try:
                fn(s, *args)
            except BaseException as e:      # a bug in the churner itself
                st.crashed = "%s: %r" % (name, e)
                st.fail("churner %s crashed: %r" % (name, e))
        t = threading.Thread(target=body, name=name, daemon=True)
        t.start()
        threads.append(t)
    return threads


def soak(g, args, tokens, passwords, res):
    """Runs inside `with g`: baseline, traffic with samples, settle, stop."""
    pid = g.proc.pid
    s = Soak(g, args, tokens, passwords)
    res.soak = s
    time.sleep(0.5)
    s.t0 = time.monotonic()
    res.base = take_sample(s, pid)
    res.cpu0 = cpu_seconds(pid)
    b = res.base
    print("gatehouse pid %d on udp/tcp %d, tls %d, signaling %d, admin %d, relay %d-%d" % (
        pid, g.port, g.tls_port, g.signaling_port, g.admin_port, g.port_min, g.port_max))
    print("baseline after start: rss %d KiB, fds %d, threads %d" % (b.rss, b.fds, b.threads))
    print("soak %.0f s, a sample every %.0f s, warm-up %.0f s; rss = lowest of %d reads, "
          "peak = highest; churners: count/errors" % (
              args.duration, args.interval, args.warmup * args.duration, RSS_READS), flush=True)
    s.t0 = time.monotonic()
    s.deadline = s.t0 + args.duration
    threads = run_churners(s)
    # Samples every interval, one exactly at the end of the warm-up and
    # one at the deadline.
    warm_s = args.warmup * args.duration
    n = int(args.duration // args.interval)
    schedule = sorted({k * args.interval for k in range(n + 1)} | {warm_s, args.duration})
    for at in schedule:
        while g.proc.poll() is None and time.monotonic() < s.t0 + at:
            time.sleep(max(0.0, min(0.5, s.t0 + at - time.monotonic())))
        smp = take_sample(s, pid) if g.proc.poll() is None else None
        if smp is None:
            res.died_at = time.monotonic() - s.t0
            break
        res.samples.append(smp)
        print_sample(smp)
    s.stop.set()
    res.cpu1 = cpu_seconds(pid)
    res.traffic_s = time.monotonic() - s.t0
    print("traffic stopping; waiting for the churners ...", flush=True)
    t_stop = time.monotonic()
    for t in threads:
        t.join(max(0.0, CALL_TIMEOUT_S + 20 - (time.monotonic() - t_stop)))
    res.stuck = [t.name for t in threads if t.is_alive()]
    # Settle: at least SETTLE_MIN_S, then until the descriptors are back
    # within the tolerance or SETTLE_MAX_S passed.
    t_settle = time.monotonic()
    time.sleep(SETTLE_MIN_S)
    while True:
        end = take_sample(s, pid)
        if end is None or end.fds - res.base.fds <= FD_TOLERANCE or \
                time.monotonic() - t_settle >= SETTLE_MAX_S:
            break
        time.sleep(1.0)
    res.settle_s = time.monotonic() - t_settle
    res.end = end
    res.alive_at_end = end is not None and end.alive
    res.metrics = metrics(g) if res.alive_at_end else {}
    t = time.monotonic()
    res.rc = g.stop()
    res.stop_s = time.monotonic() - t


class Result:
    def __init__(self):
        self.soak = None
        self.base = None            # Sample right after the start
        self.samples = []           # Samples during the traffic
        self.end = None             # Sample after the settle
        self.died_at = None
        self.stuck = []
        self.settle_s = None
        self.alive_at_end = False
        self.metrics = {}
        self.rc = None
        self.stop_s = None
        self.harness_error = None
        self.cpu0 = self.cpu1 = None
        self.traffic_s = None


def judge(args, res):
    """Prints the summary; returns True when every criterion holds."""
    crit = []
    s = res.soak
    warm_s = args.warmup * args.duration
    samples = res.samples
    post = [x for x in samples if x.t >= warm_s - 0.5]
    print("\n==== soak summary ====")
    print("%d samples during %.0f s of traffic, %d of them after the %.0f s warm-up" % (
        len(samples), res.traffic_s or 0, len(post), warm_s))
    if res.cpu0 is not None and res.cpu1 is not None and res.traffic_s:
        print("daemon CPU during the traffic: %.1f s (%.0f %% of one core)" % (
            res.cpu1 - res.cpu0, 100.0 * (res.cpu1 - res.cpu0) / res.traffic_s))
    # -- liveness
    dead = [x.t for x in samples if not x.alive]
    if res.died_at is not None:
        detail = "exited at t=%.0f s" % res.died_at
    elif dead:
        detail = "no Binding answer at t=%s" % ", ".join("%.0f" % t for t in dead)
    elif not res.alive_at_end:
        detail = "not answering after the settle"
    else:
        detail = "%d samples, every one answered a STUN Binding" % len(samples)
    crit.append(("daemon alive throughout", res.died_at is None and not dead and res.alive_at_end,
                 detail))
    if res.harness_error is None:
        detail = "exit %s, %.1f s after SIGTERM" % (res.rc, res.stop_s or 0)
    else:
        detail = res.harness_error.splitlines()[0]
    crit.append(("daemon exits 0 on SIGTERM", res.rc == 0 and res.harness_error is None, detail))
    # -- memory
    if len(post) >= 3:
        rss0, rss_end = post[0].rss, samples[-1].rss
        rss_max = max(x.rss for x in samples)
        peak = max(x.peak for x in samples)
        slope = lsq_slope([(x.t, x.rss) for x in post])          # KiB/s
        window = post[-1].t - post[0].t
        extrap = slope * window
        limit = max(RSS_MIN_LIMIT_KIB, RSS_SHARE_LIMIT * rss0)
        print("RSS: %d KiB at the end of the warm-up (t=%.0f s), %d KiB at the end, max %d KiB "
              "(highest single read %d KiB)" % (rss0, post[0].t, rss_end, rss_max, peak))
        print("     growth %+d KiB (%+.1f %%); %s KiB after the settle" % (
            rss_end - rss0, 100.0 * (rss_end - rss0) / rss0, res.end.rss if res.end else "?"))
        print("     slope after the warm-up %+.1f KiB/min, extrapolated over %.0f s: %+.0f KiB "
              "(limit %.0f KiB)" % (slope * 60, window, extrap, limit))
        crit.append(("RSS flat after warm-up", extrap < limit,
                     "%+.1f KiB/min, %+.0f KiB over %.0f s, limit %.0f KiB" % (
                         slope * 60, extrap, window, limit)))
    else:
        crit.append(("RSS flat after warm-up", False,
                     "only %d samples after the warm-up, 3 needed (longer --duration or "
                     "shorter --interval)" % len(post)))
    # -- descriptors
    if res.base and res.end and samples:
        print("fds: %d after the start, %s at the end of the warm-up, %d at the end of the "
              "traffic, %d after a %.1f s settle (tolerance %d)" % (
                  res.base.fds, post[0].fds if post else "?", samples[-1].fds, res.end.fds,
                  res.settle_s, FD_TOLERANCE))
        print("threads: %d after the start, max %d, %d at the end" % (
            res.base.threads, max(x.threads for x in samples), res.end.threads))
        d = res.end.fds - res.base.fds
        crit.append(("fds back to baseline", d <= FD_TOLERANCE,
                     "%d after the start, %d after the settle (%+d)" % (
                         res.base.fds, res.end.fds, d)))
    else:
        crit.append(("fds back to baseline", False, "no sample after the settle"))
    if res.metrics:
        print("metrics after the settle: %s" % ", ".join(
            "%s %s" % (k, v) for k, v in sorted(res.metrics.items())))
    # -- churners
    no_progress, errors = [], []
    for k, st in s.stats.items():
        c, e = st.snapshot()
        extra = ", ".join("%s %d" % kv for kv in sorted(st.extra.items()))
        print("%-10s %6d %-11s errors %4d (%5.2f %%)%s" % (
            k, c, st.unit, e, 100.0 * e / c if c else 0.0, ("  [" + extra + "]") if extra else ""))
        for msg, n in st.messages.items():
            print("           %4d x %s" % (n, msg))
        if st.extra.get("skipped"):
            continue
        if c - e <= 0:
            no_progress.append(k)
        if c and e / c >= ERROR_SHARE_LIMIT:
            errors.append("%s %d/%d" % (k, e, c))
        if st.crashed:
            errors.append("%s crashed" % k)
    if res.stuck:
        errors.append("churner threads still running: %s" % ", ".join(res.stuck))
    crit.append(("every churner made progress", not no_progress,
                 "nothing succeeded: %s" % ", ".join(no_progress) if no_progress else "all > 0"))
    crit.append(("functional errors < 1 %", not errors,
                 "; ".join(errors) if errors else "every churner below"))
    print()
    for name, ok, detail in crit:
        print("%s  %-29s %s" % ("PASS" if ok else "FAIL", name, detail))
    ok = all(c[1] for c in crit)
    print("\nRESULT: %s" % ("PASS" if ok else "FAIL (%s)" % ", ".join(c[0] for c in crit if not c[1])),
          flush=True)
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gatehouse", default=os.environ.get("GATEHOUSE", gh.DEFAULT_BINARY),
                   help="path of the gatehouse binary (default %(default)s)")
    p.add_argument("--duration", type=float, default=300, help="seconds of traffic (default 300)")
    p.add_argument("--interval", type=float, default=10, help="sample period, s (default 10)")
    p.add_argument("--warmup", type=float, default=0.2,
                   help="fraction of the duration before memory is judged (default 0.2)")
    args = p.parse_args()
    if args.duration <= 0 or args.interval <= 0 or not 0 <= args.warmup < 1:
        p.error("need --duration > 0, --interval > 0 and 0 <= --warmup < 1")
    # The harness starts the daemon in its work directory.
    args.gatehouse = os.path.abspath(args.gatehouse)
    if not os.access(args.gatehouse, os.X_OK):
        p.error("%s: not an executable" % args.gatehouse)

    res = Result()

    # Ctrl-C and SIGTERM end the soak the same way: the exception unwinds
    # through `with g`, which stops the daemon. SIGINT is set explicitly:
    # a shell starts background jobs with it ignored.
    def on_signal(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    g, tokens, passwords = build_gatehouse(args)
    try:
        with g:
            soak(g, args, tokens, passwords, res)
    except KeyboardInterrupt:
        if res.soak is not None:
            res.soak.stop.set()
        print("\ninterrupted: traffic stopped, daemon stopped (exit %s)" % g.returncode, flush=True)
        return 130
    except RuntimeError as e:
        # The harness raises when the daemon did not exit 0 after SIGTERM,
        # needed a SIGKILL, or logged a sanitizer report.
        res.harness_error = str(e)
        print("harness: %s" % gh.tail(str(e), 30), flush=True)
        if res.soak is None:
            return 1
    finally:
        if res.soak is not None:
            res.soak.stop.set()
    return 0 if judge(args, res) else 1


if __name__ == "__main__":
    sys.exit(main())
