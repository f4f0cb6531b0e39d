"""The few DER and base64url helpers the tests need to turn an OpenSSL key
into a JWK (and a JWS signature into its r || s form)."""

import base64


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def der_read(b, off=0):
    """One DER TLV at off: (tag, content bytes, next offset)."""
    tag = b[off]
    n = b[off + 1]
    off += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[off:off + k], "big")
        off += k
    return tag, b[off:off + n], off + n


def der_children(content):
    out, off = [], 0
    while off < len(content):
        tag, val, off = der_read(content, off)
        out.append((tag, val))
    return out
