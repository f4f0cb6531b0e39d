#!/usr/bin/python3
"""A small TURN client for the integration tests (RFC 8489 STUN, RFC 8656 TURN).

Written for tests, not for production: every request and response is
available as a parsed Message so a test can assert on the exact class,
error code and attributes, and a test can also send raw bytes or a
deliberately broken message.

    c = TurnClient("127.0.0.1", gh.port, "udp", "bench", "secret")
    r = c.allocate()                  # Message; r.ok, r.code, r.get(attr)
    c.relayed                         # (ip, port) from XOR-RELAYED-ADDRESS
    c.create_permission([peer])       # Message (200 / 403 / ...)
    c.channel_bind(0x4000, peer)
    c.send_indication(peer, b"x"); c.send_channel(0x4000, b"x")
    c.recv_data(1.0)                  # ('data', peer, bytes) / ('channel', ch, bytes) / None
    c.close()                         # Refresh(0) for UDP allocations, then close

Transports: "udp", "tcp", "tls" (stream framing from the STUN length
field; ChannelData padded to 4 bytes on streams, RFC 8656 §12.5).

Long-term credentials (RFC 8489 §9.2): the first authenticated request is
sent without credentials, the 401 gives REALM and NONCE (and
PASSWORD-ALGORITHMS), and the request is sent again with USERNAME, REALM,
NONCE and MESSAGE-INTEGRITY under MD5(user:realm:pass). With sha256=True,
when the 401 carried PASSWORD-ALGORITHMS and the nonce starts with the
"obMatJos2" cookie, the client sends PASSWORD-ALGORITHM SHA-256, echoes
PASSWORD-ALGORITHMS, and signs with MESSAGE-INTEGRITY-SHA256 under
SHA256(user:realm:pass). A 438 (stale nonce) is retried with the new nonce.

Standard library only.
"""

import collections
import hashlib
import hmac
import os
import socket
import ssl
import struct
import time
import zlib

MAGIC_COOKIE = 0x2112A442
FINGERPRINT_XOR = 0x5354554E
NONCE_COOKIE = "obMatJos2"
HEADER_LEN = 20

# Methods (RFC 8489 §18.2, RFC 8656 §17).
BINDING = 0x001
ALLOCATE = 0x003
REFRESH = 0x004
SEND = 0x006
DATA = 0x007
CREATE_PERMISSION = 0x008
CHANNEL_BIND = 0x009

METHOD_NAMES = {BINDING: "Binding", ALLOCATE: "Allocate", REFRESH: "Refresh",
                SEND: "Send", DATA: "Data", CREATE_PERMISSION: "CreatePermission",
                CHANNEL_BIND: "ChannelBind"}

# Classes, as the two bits C1 C0 of RFC 8489 §5.
REQUEST = 0
INDICATION = 1
SUCCESS = 2
ERROR = 3

CLASS_NAMES = {REQUEST: "request", INDICATION: "indication",
               SUCCESS: "success", ERROR: "error"}

# Attributes (RFC 8489 §18.3, RFC 8656 §18).
MAPPED_ADDRESS = 0x0001
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
CHANNEL_NUMBER = 0x000C
LIFETIME = 0x000D
XOR_PEER_ADDRESS = 0x0012
DATA_ATTR = 0x0013
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_ADDRESS_FAMILY = 0x0017
EVEN_PORT = 0x0018
REQUESTED_TRANSPORT = 0x0019
DONT_FRAGMENT = 0x001A
MESSAGE_INTEGRITY_SHA256 = 0x001C
PASSWORD_ALGORITHM = 0x001D
USERHASH = 0x001E
XOR_MAPPED_ADDRESS = 0x0020
RESERVATION_TOKEN = 0x0022
PASSWORD_ALGORITHMS = 0x8002
SOFTWARE = 0x8022
FINGERPRINT = 0x8028

# PASSWORD-ALGORITHM numbers (RFC 8489 §18.5).
PWALG_MD5 = 0x0001
PWALG_SHA256 = 0x0002

# REQUESTED-TRANSPORT protocol numbers and address families.
TRANSPORT_UDP = 17
TRANSPORT_TCP = 6
FAMILY_IPV4 = 0x01
FAMILY_IPV6 = 0x02


# ------------------------------------------------------------ encoding

def message_type(method, cls):
    """RFC 8489 §5: the 14-bit type is M11..M7 C1 M6..M4 C0 M3..M0."""
    return (((method & 0xF80) << 2) | ((method & 0x070) << 1) | (method & 0x00F)
            | ((cls & 0x2) << 7) | ((cls & 0x1) << 4))


def split_message_type(t):
    """Inverse of message_type: (method, cls)."""
    method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)
    cls = ((t >> 7) & 0x2) | ((t >> 4) & 0x1)
    return method, cls


def pad4(n):
    return -n % 4


def encode_attr(t, value):
    return struct.pack("!HH", t, len(value)) + value + b"\0" * pad4(len(value))


def _ip_bytes(ip):
    if ":" in ip:
        return FAMILY_IPV6, socket.inet_pton(socket.AF_INET6, ip)
    return FAMILY_IPV4, socket.inet_pton(socket.AF_INET, ip)


def xor_address(ip, port, txid):
    """XOR-MAPPED/-PEER/-RELAYED-ADDRESS value (RFC 8489 §14.2)."""
    family, raw = _ip_bytes(ip)
    key = struct.pack("!I", MAGIC_COOKIE) + txid
    x = bytes(a ^ b for a, b in zip(raw, key))
    return struct.pack("!BBH", 0, family, port ^ (MAGIC_COOKIE >> 16)) + x


def decode_xor_address(value, txid):
    """(ip, port) or None if the value is not a valid address."""
    if len(value) < 4:
        return None
    family = value[1]
    port = struct.unpack("!H", value[2:4])[0] ^ (MAGIC_COOKIE >> 16)
    key = struct.pack("!I", MAGIC_COOKIE) + txid
    if family == FAMILY_IPV4 and len(value) == 8:
        raw = bytes(a ^ b for a, b in zip(value[4:8], key))
        return socket.inet_ntop(socket.AF_INET, raw), port
    if family == FAMILY_IPV6 and len(value) == 20:
        raw = bytes(a ^ b for a, b in zip(value[4:20], key))
        return socket.inet_ntop(socket.AF_INET6, raw), port
    return None


def plain_address(ip, port):
    """MAPPED-ADDRESS style value."""
    family, raw = _ip_bytes(ip)
    return struct.pack("!BBH", 0, family, port) + raw


def error_code_value(code, reason=""):
    return struct.pack("!HBB", 0, code // 100, code % 100) + reason.encode()


def decode_error_code(value):
    """(code, reason) or (None, None) if malformed."""
    if len(value) < 4:
        return None, None
    return (value[2] & 0x7) * 100 + value[3], value[4:].decode("utf-8", "replace")


def password_algorithms_value(algs):
    """algs: list of (number, params bytes)."""
    out = b""
    for num, params in algs:
        out += struct.pack("!HH", num, len(params)) + params + b"\0" * pad4(len(params))
    return out


def decode_password_algorithms(value):
    """list of (number, params) or None if malformed."""
    algs = []
    off = 0
    while off < len(value):
        if len(value) - off < 4:
            return None
        num, plen = struct.unpack("!HH", value[off:off + 4])
        off += 4
        if plen > len(value) - off:
            return None
        algs.append((num, value[off:off + plen]))
        off += plen + pad4(plen)
    return algs


def password_algorithm_value(num, params=b""):
    return struct.pack("!HH", num, len(params)) + params + b"\0" * pad4(len(params))


def decode_unknown_attributes(value):
    return [struct.unpack("!H", value[i:i + 2])[0] for i in range(0, len(value) - 1, 2)]


def u32(v):
    return struct.pack("!I", v)


def requested_transport_value(proto):
    return struct.pack("!B3x", proto)


def requested_family_value(family):
    return struct.pack("!B3x", family)


def channel_number_value(ch):
    return struct.pack("!HH", ch, 0)


def key_md5(user, realm, password):
    """RFC 8489 §9.2.2 long-term key (no OpaqueString processing)."""
    return hashlib.md5(("%s:%s:%s" % (user, realm, password)).encode()).digest()


def key_sha256(user, realm, password):
    return hashlib.sha256(("%s:%s:%s" % (user, realm, password)).encode()).digest()


def _with_length(header, length):
    return header[:2] + struct.pack("!H", length) + header[4:]


class Message:
    """A STUN message: method, cls, txid and an ordered list of
    (type, value) attributes. Parsed messages keep their raw bytes and
    attribute offsets so integrity and fingerprint can be checked."""

    def __init__(self, method, cls, txid=None, attrs=None):
        self.method = method
        self.cls = cls
        self.txid = txid if txid is not None else os.urandom(12)
        self.attrs = list(attrs or [])
        self.raw = None
        self.offsets = []  # offset of each attribute header (parsed messages)

    # ---- access
    def add(self, t, value):
        self.attrs.append((t, value))
        return self

    def get(self, t, default=None):
        for at, v in self.attrs:
            if at == t:
                return v
        return default

    def get_all(self, t):
        return [v for at, v in self.attrs if at == t]

    def has(self, t):
        return any(at == t for at, _ in self.attrs)

    @property
    def types(self):
        return [t for t, _ in self.attrs]

    @property
    def ok(self):
        return self.cls == SUCCESS

    @property
    def code(self):
        """ERROR-CODE as an int (e.g. 401), 200 for a success response,
        None for anything else."""
        if self.cls == SUCCESS:
            return 200
        v = self.get(ERROR_CODE)
        if v is None:
            return None
        return decode_error_code(v)[0]

    @property
    def reason(self):
        v = self.get(ERROR_CODE)
        return decode_error_code(v)[1] if v is not None else None

    def address(self, t):
        v = self.get(t)
        if v is None:
            return None
        return decode_xor_address(v, self.txid)

    def u32(self, t):
        v = self.get(t)
        if v is None or len(v) != 4:
            return None
        return struct.unpack("!I", v)[0]

    @property
    def lifetime(self):
        return self.u32(LIFETIME)

    @property
    def attrs_dict(self):
        d = {}
        for t, v in self.attrs:
            d.setdefault(t, v)
        return d

    def __repr__(self):
        name = METHOD_NAMES.get(self.method, "0x%03x" % self.method)
        s = "<%s %s" % (name, CLASS_NAMES[self.cls])
        if self.cls == ERROR:
            s += " %s %r" % (self.code, self.reason)
        s += " attrs=[%s]>" % ", ".join("0x%04x" % t for t in self.types)
        return s

    # ---- building
    def encode(self, integrity=None, key=None, fingerprint=False):
        """integrity: None, "sha1" (MESSAGE-INTEGRITY), "sha256"
        (MESSAGE-INTEGRITY-SHA256) or "both" (MI then MI-SHA256)."""
        mtype = message_type(self.method, self.cls)
        body = b"".join(encode_attr(t, v) for t, v in self.attrs)
        header = struct.pack("!HHI", mtype, 0, MAGIC_COOKIE) + self.txid
        if integrity in ("sha1", "both"):
            h = _with_length(header, len(body) + 24)
            mac = hmac.new(key, h + body, hashlib.sha1).digest()
            body += encode_attr(MESSAGE_INTEGRITY, mac)
        if integrity in ("sha256", "both"):
            h = _with_length(header, len(body) + 36)
            mac = hmac.new(key, h + body, hashlib.sha256).digest()
            body += encode_attr(MESSAGE_INTEGRITY_SHA256, mac)
        if fingerprint:
            h = _with_length(header, len(body) + 8)
            crc = (zlib.crc32(h + body) & 0xFFFFFFFF) ^ FINGERPRINT_XOR
            body += encode_attr(FINGERPRINT, u32(crc))
        return _with_length(header, len(body)) + body

    # ---- parsing
    @classmethod
    def parse(cls, data):
        """Parses one whole STUN message; raises ValueError when malformed."""
        if len(data) < HEADER_LEN:
            raise ValueError("short STUN message (%d bytes)" % len(data))
        mtype, length, cookie = struct.unpack("!HHI", data[:8])
        if mtype & 0xC000:
            raise ValueError("top bits set: not STUN")
        if cookie != MAGIC_COOKIE:
            raise ValueError("bad magic cookie")
        if length % 4 or HEADER_LEN + length != len(data):
            raise ValueError("bad length field %d for %d bytes" % (length, len(data)))
        method, klass = split_message_type(mtype)
        m = cls(method, klass, data[8:20])
        m.raw = bytes(data)
        off = HEADER_LEN
        while off < len(data):
            if len(data) - off < 4:
                raise ValueError("truncated attribute header")
            t, alen = struct.unpack("!HH", data[off:off + 4])
            if alen > len(data) - off - 4:
                raise ValueError("attribute 0x%04x overruns the message" % t)
            m.attrs.append((t, data[off + 4:off + 4 + alen]))
            m.offsets.append(off)
            off += 4 + alen + pad4(alen)
        if off != len(data):
            raise ValueError("attribute padding overruns the message")
        return m

    def _mac_input(self, t, extra):
        for i, (at, _) in enumerate(self.attrs):
            if at == t:
                off = self.offsets[i]
                h = _with_length(self.raw[:HEADER_LEN], off - HEADER_LEN + extra)
                return h + self.raw[HEADER_LEN:off]
        return None

    def check_integrity(self, key):
        """True/False for MESSAGE-INTEGRITY; None if absent."""
        inp = self._mac_input(MESSAGE_INTEGRITY, 24)
        if inp is None:
            return None
        mac = hmac.new(key, inp, hashlib.sha1).digest()
        return hmac.compare_digest(mac, self.get(MESSAGE_INTEGRITY))

    def check_integrity_sha256(self, key):
        """True/False for MESSAGE-INTEGRITY-SHA256; None if absent."""
        v = self.get(MESSAGE_INTEGRITY_SHA256)
        inp = self._mac_input(MESSAGE_INTEGRITY_SHA256, 4 + len(v or b""))
        if inp is None:
            return None
        mac = hmac.new(key, inp, hashlib.sha256).digest()
        return hmac.compare_digest(mac[:len(v)], v) and len(v) >= 16

    def check_fingerprint(self):
        """True/False; None if absent. Must be the last attribute."""
        if not self.has(FINGERPRINT):
            return None
        if self.types[-1] != FINGERPRINT:
            return False
        inp = self._mac_input(FINGERPRINT, 8)
        crc = (zlib.crc32(inp) & 0xFFFFFFFF) ^ FINGERPRINT_XOR
        return u32(crc) == self.get(FINGERPRINT)


def channel_data(ch, data, pad=False):
    out = struct.pack("!HH", ch, len(data)) + data
    if pad:
        out += b"\0" * pad4(len(data))
    return out


def frame_length(buf):
    """Stream framing (RFC 8656 §12.5): length of the first frame in buf
    (ChannelData padded to 4), None if more bytes are needed; raises
    ValueError when the bytes are neither STUN nor ChannelData."""
    if len(buf) < 4:
        return None
    first = buf[0]
    n = struct.unpack("!H", buf[2:4])[0]
    if first >> 6 == 0:
        return HEADER_LEN + n
    if 0x40 <= first <= 0x7F:
        return 4 + n + pad4(n)
    raise ValueError("stream bytes are neither STUN nor ChannelData: %r" % bytes(buf[:4]))


def tls_client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ------------------------------------------------------------- client

class TurnClient:
    """One client 5-tuple (one socket or connection) toward the server."""

    def __init__(self, host, port, transport="udp", user=None, password=None,
                 sha256=False, local=None, timeout=2.0, server_hostname="localhost"):
        self.host = host
        self.port = port
        self.transport = transport
        self.user = user
        self.password = password
        self.sha256 = sha256
        self.timeout = timeout
        self.realm = None
        self.nonce = None
        self.server_algs = None   # raw PASSWORD-ALGORITHMS value from the last 401/438
        self.alg_used = None      # "md5" or "sha256" for the last authenticated request
        self.last_challenge = None
        self.last_request = None  # raw bytes of the last request sent
        self.relayed = None
        self.mapped = None
        self.lifetime = None
        self.closed = False       # stream closed by the server
        self.pending = collections.deque()  # Data indications / ChannelData / stray messages
        self._buf = b""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if transport == "udp":
            s = socket.socket(family, socket.SOCK_DGRAM)
            if local:
                s.bind(local)
            s.connect((host, port))
        elif transport in ("tcp", "tls"):
            s = socket.socket(family, socket.SOCK_STREAM)
            if local:
                s.bind(local)
            s.settimeout(timeout)
            s.connect((host, port))
            if transport == "tls":
                s = tls_client_context().wrap_socket(s, server_hostname=server_hostname)
        else:
            raise ValueError("transport must be udp, tcp or tls")
        self.sock = s

    @property
    def stream(self):
        return self.transport != "udp"

    @property
    def local_address(self):
        return self.sock.getsockname()[:2]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self, release=True):
        """Deletes a UDP allocation (Refresh LIFETIME 0, best effort), then
        closes the socket. Stream allocations end with the connection."""
        try:
            if release and self.relayed is not None and not self.stream and self.nonce:
                self.request(REFRESH, [(LIFETIME, u32(0))], timeout=0.5)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    # ---- raw I/O
    def send_raw(self, data):
        if self.stream:
            self.sock.sendall(data)
        else:
            self.sock.send(data)

    def recv_raw(self, timeout=None):
        """Next datagram (UDP) or whole frame (stream), or None on timeout
        or when the connection was closed (then self.closed is True)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if not self.stream:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                try:
                    return self.sock.recv(65536)
                except socket.timeout:
                    return None
                except ConnectionRefusedError:
                    # ICMP port unreachable from an earlier send; keep waiting.
                    continue
        while True:
            n = frame_length(self._buf)
            if n is not None and len(self._buf) >= n:
                frame, self._buf = self._buf[:n], self._buf[n:]
                return frame
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self._buf += chunk

    def _classify(self, frame):
        """('stun', Message) / ('channel', ch, data) / ('junk', bytes)."""
        if frame and 0x40 <= frame[0] <= 0x7F and len(frame) >= 4:
            ch, n = struct.unpack("!HH", frame[:4])
            return ("channel", ch, frame[4:4 + n])
        try:
            return ("stun", Message.parse(frame))
        except ValueError:
            return ("junk", frame)

    def recv_message(self, timeout=None):
        """Next STUN message (Message) from pending or the socket; other
        frames are queued in pending. None on timeout."""
        for i, item in enumerate(self.pending):
            if item[0] == "stun":
                del self.pending[i]
                return item[1]
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv_raw(max(0.0, deadline - time.monotonic()))
            if frame is None:
                return None
            item = self._classify(frame)
            if item[0] == "stun":
                return item[1]
            self.pending.append(item)

    def transact(self, data, txid, timeout=None):
        """Sends a request and waits for the response with this txid;
        anything else that arrives meanwhile is queued in pending."""
        self.last_request = data
        self.send_raw(data)
        return self.wait_response(txid, timeout)

    def wait_response(self, txid, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            frame = self.recv_raw(left)
            if frame is None:
                return None
            item = self._classify(frame)
            if (item[0] == "stun" and item[1].txid == txid
                    and item[1].cls in (SUCCESS, ERROR)):
                return item[1]
            self.pending.append(item)

    # ---- authentication
    def key(self):
        if self.alg_used == "sha256":
            return key_sha256(self.user, self.realm, self.password)
        return key_md5(self.user, self.realm, self.password)

    def _learn_challenge(self, resp):
        self.last_challenge = resp
        realm = resp.get(REALM)
        nonce = resp.get(NONCE)
        if realm is not None:
            self.realm = realm.decode("utf-8", "replace")
        if nonce is not None:
            self.nonce = nonce.decode("utf-8", "replace")
        algs = resp.get(PASSWORD_ALGORITHMS)
        if algs is not None:
            self.server_algs = algs

    def _use_sha256(self):
        return (self.sha256 and self.server_algs is not None and self.nonce is not None
                and self.nonce.startswith(NONCE_COOKIE)
                and any(n == PWALG_SHA256 for n, _ in
                        (decode_password_algorithms(self.server_algs) or [])))

    def auth_attrs(self):
        """USERNAME, REALM, NONCE (+ PASSWORD-ALGORITHMS and
        PASSWORD-ALGORITHM in SHA-256 mode) for the current challenge."""
        attrs = [(USERNAME, self.user.encode()), (REALM, self.realm.encode()),
                 (NONCE, self.nonce.encode())]
        if self.alg_used == "sha256":
            attrs += [(PASSWORD_ALGORITHMS, self.server_algs),
                      (PASSWORD_ALGORITHM, password_algorithm_value(PWALG_SHA256))]
        return attrs

    def build_request(self, method, attrs=(), auth=True, txid=None, omit=(),
                      replace=None, fingerprint=False, integrity=None, key=None):
        """Returns (Message, bytes). With auth and a known nonce, appends
        the credentials and the integrity attribute. omit drops auth
        attribute types; replace maps an auth attribute type to another
        value; integrity/key override the computed ones ("none" for no
        integrity attribute)."""
        if txid is None:
            txid = os.urandom(12)
        if callable(attrs):
            attrs = attrs(txid)
        msg = Message(method, REQUEST, txid, attrs)
        if not (auth and self.nonce is not None):
            return msg, msg.encode(fingerprint=fingerprint)
        self.alg_used = "sha256" if self._use_sha256() else "md5"
        replace = replace or {}
        for t, v in self.auth_attrs():
            if t in omit:
                continue
            msg.add(t, replace.get(t, v))
        if integrity is None:
            integrity = "sha256" if self.alg_used == "sha256" else "sha1"
        if integrity == "none":
            return msg, msg.encode(fingerprint=fingerprint)
        return msg, msg.encode(integrity, key if key is not None else self.key(), fingerprint)

    def request(self, method, attrs=(), auth=True, txid=None, retry=True, timeout=None,
                **build):
        """Sends a request and returns the response Message (None on
        timeout). With auth, answers a first 401 challenge and a 438 stale
        nonce by sending again with credentials (when retry), as a new
        transaction. attrs may be a function of the txid (for XOR
        addresses). A given txid is used for the first attempt only."""
        resp = None
        for _ in range(3):
            msg, data = self.build_request(method, attrs, auth, txid, **build)
            txid = None
            had_creds = auth and self.nonce is not None
            resp = self.transact(data, msg.txid, timeout)
            if resp is None or not auth:
                return resp
            if resp.code in (401, 438) and resp.has(NONCE):
                challenge = (resp.code == 401 and not had_creds) or resp.code == 438
                self._learn_challenge(resp)
                if retry and challenge:
                    continue
            return resp
        return resp

    def challenge(self):
        """Sends an unauthenticated Allocate to get REALM/NONCE (the 401)."""
        resp = self.request(ALLOCATE, [(REQUESTED_TRANSPORT, requested_transport_value(17))],
                            auth=False)
        if resp is not None and resp.code == 401:
            self._learn_challenge(resp)
        return resp

    # ---- STUN / TURN methods
    def binding(self, fingerprint=False, attrs=()):
        msg = Message(BINDING, REQUEST, None, attrs)
        return self.transact(msg.encode(fingerprint=fingerprint), msg.txid)

    def allocate(self, lifetime=None, transport=TRANSPORT_UDP, family=None, extra_attrs=(),
                 **kw):
        attrs = []
        if transport is not None:
            attrs.append((REQUESTED_TRANSPORT, requested_transport_value(transport)))
        if lifetime is not None:
            attrs.append((LIFETIME, u32(lifetime)))
        if family is not None:
            attrs.append((REQUESTED_ADDRESS_FAMILY, requested_family_value(family)))
        attrs += list(extra_attrs)
        resp = self.request(ALLOCATE, attrs, **kw)
        if resp is not None and resp.ok:
            self.relayed = resp.address(XOR_RELAYED_ADDRESS)
            self.mapped = resp.address(XOR_MAPPED_ADDRESS)
            self.lifetime = resp.lifetime
        return resp

    def refresh(self, lifetime=None, extra_attrs=(), **kw):
        attrs = [] if lifetime is None else [(LIFETIME, u32(lifetime))]
        resp = self.request(REFRESH, attrs + list(extra_attrs), **kw)
        if resp is not None and resp.ok and lifetime == 0:
            self.relayed = None
        return resp

    def create_permission(self, peers, **kw):
        """peers: list of (ip, port)."""
        def attrs(txid):
            return [(XOR_PEER_ADDRESS, xor_address(ip, port, txid)) for ip, port in peers]
        return self.request(CREATE_PERMISSION, attrs, **kw)

    def channel_bind(self, ch, peer, **kw):
        def attrs(txid):
            return [(CHANNEL_NUMBER, channel_number_value(ch)),
                    (XOR_PEER_ADDRESS, xor_address(peer[0], peer[1], txid))]
        return self.request(CHANNEL_BIND, attrs, **kw)

    def send_indication(self, peer, data, extra_attrs=()):
        msg = Message(SEND, INDICATION)
        msg.add(XOR_PEER_ADDRESS, xor_address(peer[0], peer[1], msg.txid))
        msg.add(DATA_ATTR, data)
        for t, v in extra_attrs:
            msg.add(t, v)
        self.send_raw(msg.encode())

    def send_channel(self, ch, data):
        self.send_raw(channel_data(ch, data, pad=self.stream))

    def recv_data(self, timeout=1.0):
        """Next relayed payload: ('data', (ip, port), bytes) for a Data
        indication, ('channel', ch, bytes) for ChannelData, or None."""
        deadline = time.monotonic() + timeout
        while True:
            while self.pending:
                item = self.pending.popleft()
                if item[0] == "channel":
                    return item
                if item[0] == "stun" and item[1].method == DATA and item[1].cls == INDICATION:
                    m = item[1]
                    return ("data", m.address(XOR_PEER_ADDRESS), m.get(DATA_ATTR))
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            frame = self.recv_raw(left)
            if frame is None:
                return None
            self.pending.append(self._classify(frame))
