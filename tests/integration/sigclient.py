#!/usr/bin/python3
"""A small asyncio client for Gatehouse's signaling WebSocket, and helpers
around it (TOTP codes, local users through the CLI, policy files).

    c = SigClient(ws_url(g))                 # or SigClient(url, origin=...,
                                             #    ssl_context=ctx) for wss://
    await c.connect()
    r = await c.request({"type": "ping"})    # adds an "id", returns the reply
    await c.send({"type": "hangup", "call": cid})
    m = await c.wait_for("incoming")         # next message of that type
    await c.expect_nothing(1.0)              # nothing at all arrives in 1 s
    await c.wait_closed(5)                   # True when the server closed it
    c.peer_cert_der()                        # wss://: the server's certificate
    await c.close()

Every message sent and received is kept in c.transcript, and
c.describe() renders it for assertion messages, so a failure says what
was on the wire.

Users: create_user(g, "alice", "pw", groups=["team"]) runs
`gatehouse user add NAME --password-stdin --totp -c CONFIG` and returns a
User whose next_totp() gives a code the daemon has not seen yet: the
daemon accepts a step only when it is later than the last step it
accepted for that user (RFC 6238 §5.2, ±1 step), so codes are handed out
in increasing step order, waiting for the clock when needed.

Standard library + aiohttp (and gh.py, next to it). Traffic goes to 127.0.0.1 only.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import sqlite3
import struct
import subprocess
import time

import aiohttp

import gh  # slow_factor(): logins (argon2id) take seconds under valgrind
import turnclient as tc

TOTP_STEP_S = 30
TOTP_DIGITS = 6
DEFAULT_TIMEOUT = 5.0 * gh.slow_factor()


# ------------------------------------------------------------------ TOTP

def hotp(secret_b32, counter, digits=TOTP_DIGITS):
    """RFC 4226 HOTP with HMAC-SHA-1."""
    s = secret_b32.strip().replace(" ", "").upper()
    key = base64.b32decode(s + "=" * (-len(s) % 8))
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return "%0*d" % (digits, code)


def totp(secret_b32, t=None, step_offset=0):
    """RFC 6238 TOTP (SHA-1, 6 digits, 30 s) at time t (default now)."""
    if t is None:
        t = time.time()
    return hotp(secret_b32, int(t // TOTP_STEP_S) + step_offset)


def current_step(t=None):
    return int((time.time() if t is None else t) // TOTP_STEP_S)


def wrong_totp(secret_b32):
    """A 6-digit code that matches none of the steps now-2 .. now+2."""
    now = current_step()
    valid = {hotp(secret_b32, now + d) for d in range(-2, 3)}
    c = int(hotp(secret_b32, now))
    while True:
        c = (c + 1) % 10 ** TOTP_DIGITS
        code = "%06d" % c
        if code not in valid:
            return code


# ------------------------------------------------------------------ users

class User:
    def __init__(self, name, password, secret=None, groups=()):
        self.name = name
        self.password = password
        self.secret = secret
        self.groups = list(groups)
        self.last_step = -1

    def next_totp(self):
        """A code for a step later than any handed out before, within the
        ±1 window. Waits when current-1..current+1 are all used up. Steps
        about to leave the window (now-1 in the last 3 s of a step) are
        not used."""
        while True:
            now = time.time()
            cur = current_step(now)
            left = TOTP_STEP_S - (now % TOTP_STEP_S)
            cands = ([cur - 1] if left > 3 else []) + [cur, cur + 1]
            for st in cands:
                if st > self.last_step:
                    self.last_step = st
                    return hotp(self.secret, st)
            time.sleep(min(left + 0.05, 1.0))

    def __repr__(self):
        return "User(%s)" % self.name


def write_config(g):
    """Writes g.config to g.config_path, as Gatehouse.start() will; lets
    the CLI run before the daemon starts (same state_dir)."""
    os.makedirs(os.path.dirname(g.config_path), exist_ok=True)
    with open(g.config_path, "w") as f:
        json.dump(g.config, f, indent=2)


def create_user(g, name, password, groups=(), with_totp=True):
    """`gatehouse user add` against g's config (written first if the
    daemon has not started yet). Returns a User with the TOTP secret."""
    if not os.path.exists(g.config_path):
        write_config(g)
    cmd = [g.binary, "user", "add", name, "--password-stdin"]
    if with_totp:
        cmd.append("--totp")
    for gr in groups:
        cmd += ["--group", gr]
    cmd += ["-c", g.config_path]
    p = subprocess.run(cmd, input=(password + "\n").encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode != 0:
        raise RuntimeError("user add %s failed (exit %d): %s%s" % (name, p.returncode, out, err))
    secret = None
    if with_totp:
        for line in out.splitlines():
            if line.startswith("secret: "):
                secret = line[len("secret: "):].strip()
        if not secret or "otpauth://" not in out:
            raise RuntimeError("user add %s --totp printed no otpauth URI / secret: %r" % (name, out))
    return User(name, password, secret, groups)


def bulk_users(g, names, group):
    """Adds names to g's users.db in group, each with the password hash of
    the first user there (made with create_user first): thousands in a
    second, where `gatehouse user add` spends argon2id time on each. For
    directories that only need to be large."""
    db = sqlite3.connect(os.path.join(g.state_dir, "users.db"))
    try:
        pw_hash = db.execute("SELECT pw_hash FROM users LIMIT 1").fetchone()[0]
        db.executemany("INSERT INTO users (name, pw_hash, created) VALUES (?, ?, 1)",
                       [(n, pw_hash) for n in names])
        db.executemany("INSERT INTO user_groups (name, grp) VALUES (?, ?)",
                       [(n, group) for n in names])
        db.commit()
    finally:
        db.close()


def write_policy(path, rules, groups=None, default="deny"):
    """Writes a policy file (DESIGN.md "Policy file"). rules: list of dicts
    {"name", "from", "to", "media", "action"[, "record"]}; groups: dict
    name -> [users]."""
    pol = {"default": default, "groups": dict(groups or {}), "rules": list(rules)}
    with open(path, "w") as f:
        json.dump(pol, f, indent=2)
    return path


# ------------------------------------------------------------- WebSocket

def ws_url(g):
    return "ws://127.0.0.1:%d/ws" % g.signaling_port


def _short(obj, limit=300):
    s = obj if isinstance(obj, str) else json.dumps(obj)
    return s if len(s) <= limit else s[:limit] + "...(%d chars)" % len(s)


class SigClient:
    """One WebSocket connection to /ws. Received JSON objects queue up in
    an inbox; wait_for()/request() take the first matching one out."""

    def __init__(self, url, origin=None, name="client", headers=None, ssl_context=None):
        self.url = url
        self.origin = origin
        self.headers = headers     # extra upgrade request headers
        self.ssl_context = ssl_context  # for wss:// URLs; None: aiohttp's default
        self.name = name
        self.session = None
        self.ws = None
        self.inbox = []
        self.transcript = []       # ("->" | "<-" | "--", text)
        self.closed = False
        self.close_code = None
        self._cond = None
        self._reader = None
        self._next_id = 1

    # ---- connection
    async def connect(self, timeout=DEFAULT_TIMEOUT):
        self._cond = asyncio.Condition()
        self.session = aiohttp.ClientSession()
        try:
            self.ws = await self.session.ws_connect(
                self.url, origin=self.origin, headers=self.headers, autoping=True, max_msg_size=0,
                timeout=timeout, receive_timeout=None, ssl=self.ssl_context)
        except BaseException:
            await self.session.close()
            self.session = None
            raise
        self._reader = asyncio.ensure_future(self._read())
        return self

    def peer_cert_der(self):
        """The server's certificate (DER) on a wss:// connection; None
        over plain ws://."""
        obj = self.ws.get_extra_info("ssl_object") if self.ws is not None else None
        return obj.getpeercert(binary_form=True) if obj is not None else None

    async def _read(self):
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.transcript.append(("<-", msg.data))
                    try:
                        obj = json.loads(msg.data)
                    except ValueError:
                        obj = {"type": "<unparsable>", "raw": msg.data}
                    async with self._cond:
                        self.inbox.append(obj)
                        self._cond.notify_all()
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    self.transcript.append(("<-", "<binary %d bytes>" % len(msg.data)))
                    async with self._cond:
                        self.inbox.append({"type": "<binary>", "raw": msg.data})
                        self._cond.notify_all()
                else:
                    break
        except Exception as e:  # connection reset and the like
            self.transcript.append(("--", "reader: %r" % e))
        finally:
            self.closed = True
            self.close_code = self.ws.close_code if self.ws is not None else None
            self.transcript.append(("--", "closed (code %s)" % self.close_code))
            async with self._cond:
                self._cond.notify_all()

    async def close(self):
        try:
            if self.ws is not None and not self.ws.closed:
                await asyncio.wait_for(self.ws.close(), 3)
        except Exception:
            pass
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 3)
            except Exception:
                self._reader.cancel()
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def __aenter__(self):
        if self.ws is None:
            await self.connect()
        return self

    async def __aexit__(self, *exc):
        await self.close()
        return False

    # ---- sending
    def new_id(self):
        i = self._next_id
        self._next_id += 1
        return i

    async def send_raw(self, text):
        self.transcript.append(("->", _short(text)))
        await self.ws.send_str(text)

    async def send(self, obj):
        await self.send_raw(json.dumps(obj))

    async def request(self, obj, timeout=DEFAULT_TIMEOUT):
        """Sends obj with an "id" (added when absent) and returns the
        message that echoes it."""
        obj = dict(obj)
        if "id" not in obj:
            obj["id"] = self.new_id()
        rid = obj["id"]
        await self.send(obj)
        return await self.wait(lambda m: m.get("id") == rid, timeout,
                               "reply to %s id %r" % (obj.get("type"), rid))

    # ---- receiving
    async def wait(self, pred, timeout=DEFAULT_TIMEOUT, what="message"):
        """Removes and returns the first inbox message matching pred;
        raises AssertionError on timeout or when the connection closes
        first."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._cond:
            while True:
                for i, m in enumerate(self.inbox):
                    if pred(m):
                        return self.inbox.pop(i)
                if self.closed:
                    raise AssertionError("%s: connection closed while waiting for %s\n%s"
                                         % (self.name, what, self.describe()))
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise AssertionError("%s: no %s within %.1f s\n%s"
                                         % (self.name, what, timeout, self.describe()))
                try:
                    await asyncio.wait_for(self._cond.wait(), left)
                except asyncio.TimeoutError:
                    pass

    async def wait_for(self, mtype, timeout=DEFAULT_TIMEOUT, **match):
        """Next message with this "type" (and the given field values)."""
        def pred(m):
            return m.get("type") == mtype and all(m.get(k) == v for k, v in match.items())
        return await self.wait(pred, timeout, "%r message%s" % (
            mtype, (" with %r" % match) if match else ""))

    async def expect_nothing(self, timeout=1.0, pred=None):
        """Asserts that no message (matching pred, if given) is in the
        inbox or arrives within timeout."""
        pred = pred or (lambda m: True)
        await asyncio.sleep(timeout)
        got = [m for m in self.inbox if pred(m)]
        assert not got, "%s: expected nothing, received %s\n%s" % (
            self.name, _short(got, 800), self.describe())

    async def wait_closed(self, timeout=DEFAULT_TIMEOUT):
        """True when the server closed the connection within timeout."""
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        except asyncio.TimeoutError:
            return False
        return self.closed

    def drain(self):
        """Takes everything queued so far."""
        out, self.inbox = self.inbox, []
        return out

    # ---- protocol helpers
    async def ping(self, timeout=DEFAULT_TIMEOUT):
        r = await self.request({"type": "ping"}, timeout)
        assert r.get("type") == "pong", "%s: ping answered with %s\n%s" % (
            self.name, _short(r), self.describe())
        return r

    async def login(self, user=None, password=None, totp=None, token=None,
                    timeout=DEFAULT_TIMEOUT, extra=None):
        """Sends a login with the given fields (None ones left out) and
        returns the reply."""
        msg = {"type": "login"}
        for k, v in (("user", user), ("password", password), ("totp", totp), ("token", token)):
            if v is not None:
                msg[k] = v
        msg.update(extra or {})
        return await self.request(msg, timeout)

    async def login_user(self, u, timeout=DEFAULT_TIMEOUT):
        """Logs a User in with a fresh TOTP code; asserts login.ok."""
        r = await self.login(u.name, u.password, u.next_totp(), timeout=timeout)
        assert r.get("type") == "login.ok" and r.get("user") == u.name, \
            "%s: login of %s failed: %s\n%s" % (self.name, u.name, _short(r), self.describe())
        return r

    def describe(self, last=25):
        lines = ["  transcript of %s (last %d):" % (self.name, last)]
        for d, t in self.transcript[-last:]:
            lines.append("    %s %s" % (d, _short(t)))
        return "\n".join(lines)


class RawWebSocket:
    """A blocking RFC 6455 client on a plain socket, for what aiohttp
    will not do: many frames written to the kernel in one call (a flood
    "all at once"), and reading everything the server sent before it
    closed, even when the close is a reset.

    ws = RawWebSocket("127.0.0.1", port); ws.send_texts([...]) (one
    sendall); frames, how = ws.read_until_closed(timeout) where frames is
    a list of (opcode, payload bytes) and how is "close-frame", "eof",
    "reset" or "timeout". rcvbuf=N makes a slow reader; source="127.0.0.2"
    speaks from that loopback address (another client IP for the daemon).
    An upgrade that is refused raises ConnectionError, whose status is
    the HTTP status (None when there was none). ws.request(obj) sends obj
    and returns the next JSON message."""

    def __init__(self, host, port, path="/ws", origin=None, timeout=5.0, rcvbuf=None,
                 source=None):
        if rcvbuf is None:
            self.sock = socket.create_connection(
                (host, port), timeout=timeout,
                source_address=(source, 0) if source else None)
        else:
            # A small receive buffer, set before the connection so that
            # the window stays small: a reader that does not keep up.
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            if source:
                self.sock.bind((source, 0))
            self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               % (path, "[%s]" % host if ":" in host else host, port, key))
        if origin:
            req += "Origin: %s\r\n" % origin
        self.sock.sendall((req + "\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                self.sock.close()
                raise ConnectionError("closed during the upgrade: %r" % buf)
            buf += chunk
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n")[0]
        m = re.match(rb"HTTP/1\.[01] (\d{3})", status)
        self.status = int(m.group(1)) if m else None
        if self.status != 101:
            self.sock.close()
            e = ConnectionError("upgrade refused: %r" % status)
            e.status = self.status
            raise e

    @staticmethod
    def frame_raw(opcode, payload):
        """An unmasked frame, as a server sends it."""
        n = len(payload)
        if n < 126:
            return struct.pack("!BB", 0x80 | opcode, n) + payload
        if n < 65536:
            return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
        return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload

    @staticmethod
    def frame(payload, opcode=0x1):
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload)
        if n < 126:
            hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    def send_texts(self, texts):
        self.sock.sendall(b"".join(self.frame(t) for t in texts))

    def _parse(self):
        out = []
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    break
                n, off = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    break
                n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
            if len(self.buf) < off + n:
                break
            out.append((b0 & 0x0F, self.buf[off:off + n]))
            self.buf = self.buf[off + n:]
        return out

    def read_until_closed(self, timeout=5.0):
        frames = self._parse()
        deadline = time.monotonic() + timeout
        while True:
            if any(op == 0x8 for op, _ in frames):
                return frames, "close-frame"
            left = deadline - time.monotonic()
            if left <= 0:
                return frames, "timeout"
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return frames, "timeout"
            except ConnectionResetError:
                return frames + self._parse(), "reset"
            if not chunk:
                return frames + self._parse(), "eof"
            self.buf += chunk
            frames += self._parse()

    def request(self, obj, timeout=10.0):
        """Sends obj as a text frame and returns the next text frame as
        JSON, or None when the connection closed or nothing came within
        timeout."""
        self.send_texts([json.dumps(obj)])
        return self.next_json(timeout)

    def next_json(self, timeout=10.0):
        """The next text frame as JSON, or None when the connection
        closed or nothing came within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            frames = self._parse()
            for i, (op, payload) in enumerate(frames):
                if op in (0x1, 0x8):
                    # What came after it is read next time.
                    self.buf = b"".join(self.frame_raw(o, p) for o, p in frames[i + 1:]) + self.buf
                    return json.loads(payload) if op == 0x1 else None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                return None
            if not chunk:
                return None
            self.buf += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


async def connect(g, name="client", origin=None):
    return await SigClient(ws_url(g), origin=origin, name=name).connect()


async def logged_in(g, user, name=None):
    c = await connect(g, name or user.name)
    try:
        await c.login_user(user)
    except BaseException:
        await c.close()
        raise
    return c


async def fresh_ping(g, timeout=DEFAULT_TIMEOUT):
    """A new connection answers ping with pong: the daemon still serves."""
    c = await connect(g, "probe")
    try:
        await c.ping(timeout)
    finally:
        await c.close()


async def in_thread(fn, *a):
    """Runs a blocking call (a TurnClient's) without stopping the loop."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *a)


async def call_with_allocations(g, users, caller, callee, media=("audio",)):
    """caller calls callee, who accepts; each makes a UDP allocation with
    the call's credentials and a permission for the other's relayed
    address. Returns (caller's client, callee's, call id, caller's
    TurnClient, callee's)."""
    ca = await logged_in(g, users[caller], caller)
    cb = await logged_in(g, users[callee], callee)
    r = await ca.request({"type": "call", "to": callee, "media": list(media)})
    assert r.get("type") == "call.ok", "call: %r" % r
    cid = r["call"]
    await cb.wait_for("incoming", call=cid)
    r2 = await cb.request({"type": "accept", "call": cid})
    assert r2.get("type") == "accept.ok", "accept: %r" % r2
    await ca.wait_for("accepted", call=cid)
    turns = []
    for srv in (r["ice_servers"][0], r2["ice_servers"][0]):
        t = tc.TurnClient(g.host, g.port, "udp", srv["username"], srv["credential"])
        resp = await in_thread(t.allocate)
        assert resp is not None and resp.ok, "Allocate: %r" % resp
        turns.append(t)
    ta, tb = turns
    for t, other in ((ta, tb), (tb, ta)):
        resp = await in_thread(t.create_permission, [other.relayed])
        assert resp is not None and resp.ok, "CreatePermission: %r" % resp
    return ca, cb, cid, ta, tb
