#!/usr/bin/env python3
"""Writes the seed corpus for every fuzz target to fuzz/seeds/<target>/.

Seeds come from the repository's known-answer vectors (../test-vectors)
plus hand-written edge cases. Deterministic: rerunning rewrites the same
files. Run from fuzz/: `python3 make_seeds.py`.
"""
import hashlib, json, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
VEC = os.path.join(HERE, "..", "test-vectors")


def vectors(name):
    with open(os.path.join(VEC, name + ".json")) as f:
        return json.load(f)["vectors"]


def h(x):
    return bytes.fromhex(x) if isinstance(x, str) else b""


seeds = {}


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    seeds.setdefault(target, []).append(data)


def ben(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:" % len(v) + v
    if isinstance(v, list):
        return b"l" + b"".join(ben(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, x) for k, x in v.items())
        return b"d" + b"".join(ben(k) + ben(x) for k, x in items) + b"e"
    raise TypeError(v)


ACCOUNT = bytes([0x05]) + bytes(range(32))
HASH43 = b"4sMyAuaZlMwww3oFvfhazfw7ASx/7TDtO+TVc8aAjHs"

# onion_peel: entry containers, layer JSON, v4 frames, relay messages.
for v in vectors("onion"):
    i, e = v["input"], v.get("expected") or {}
    c = v["category"]
    if c == "onion_request_parse":
        add("onion_peel", h(i["blob"]))
    elif c == "onion_layer_parse":
        add("onion_peel", h(i["plaintext"]) if all(ch in "0123456789abcdef" for ch in i["plaintext"]) else i["plaintext"])
    elif c == "onion_v4_encode":
        add("onion_peel", h(e.get("encoded", "")))
    elif c == "onion_build":
        add("onion_peel", h(e.get("blob", "")))
        for p in e.get("layer_plaintexts", []):
            add("onion_peel", h(p) if all(ch in "0123456789abcdef" for ch in p) else p)
    elif c == "onion_hop_decrypt":
        add("onion_peel", h(i["ciphertext"]))
for hop in (0, 1, 15, 16, 2**63 - 1, -1):
    add("onion_peel", ben({"data": b"\0" * 40, "enc_type": "xchacha20", "ephemeral_key": b"\x11" * 32, "hop_no": hop}))
add("onion_peel", ben({"data": b"x", "enc_type": "aes-gcm", "ephemeral_key": b"\x11" * 31}))
add("onion_peel", '{"destination":"127.0.0.2:443","ephemeral_key":"' + "11" * 32 + '","enc_type":"xchacha20"}')
add("onion_peel", '{"host":"127.0.0.1","target":"/oxen/v4/lsrpc","method":"POST","protocol":"https","port":443}')
add("onion_peel", '{"headers":{},"body":"e30=","method":"POST","endpoint":"/x"}')
add("onion_peel", b"l" + ben('{"method":"GET","endpoint":"/file/1"}') + ben(b"body") + b"e")

# bencode_decode: generic values, push bodies (v1, v2), registry documents.
for v in (0, -1, 2**63 - 1, b"", b"abc", [], {}, [1, [2, [3, []]]], {"a": 1, "b": [b"x", {"c": 0}]}):
    add("bencode_decode", ben(v))
for bad in (b"i-0e", b"i01e", b"03:abc", b"d1:b0:1:a0:e", b"l" * 200, b"i99999999999999999999e", b"5:ab"):
    add("bencode_decode", bad)
item = [ACCOUNT, HASH43, 1_700_000_000_000, 1_700_000_300_000, b"hello", 0]
add("bencode_decode", b"\x01" + ben([item, item]))
add("bencode_decode", b"\x02" + ben([[item], [[ACCOUNT, HASH43, 0, -1, 1_700_000_300_000]]]))
add("bencode_decode", ben({"e": 1, "n": [{"ed": b"\x22" * 32, "ip": "127.0.0.2", "p": 4433, "s": 1, "x": b"\x33" * 32}], "~": b"\x44" * 64}))

# rpc_parse: every method in the signature vectors, plus hostile shapes.
for v in vectors("rpc"):
    i = v["input"]
    if v["category"] == "request_signature":
        add("rpc_parse", json.dumps({"method": i["method"], "params": i["params"]}))
for m in ("store", "retrieve", "delete", "delete_all", "expire", "get_expiries", "get_swarm", "info", "batch", "sequence", "revoke_subaccount"):
    add("rpc_parse", json.dumps({"method": m, "params": {"pubkey": "05" + "ab" * 32, "namespace": 0, "ttl": 86400000, "timestamp": 1700000000000, "data": "aGVsbG8=", "signature": "A" * 86 + "==", "pubkey_ed25519": "cd" * 32, "messages": [HASH43.decode()], "last_hash": "", "requests": [{"method": "info", "params": {}}]}}))
for bad in ('{"method":"store","params":{"ttl":-1}}', '{"method":"store","params":{"ttl":1e400}}',
            '{"method":"retrieve","params":{"namespace":99999999999999999999}}',
            '{"method":"store","params":{"data":"!!!not base64"}}', '[' * 64 + ']' * 64, '{"method":5}', "{", ""):
    add("rpc_parse", bad)

# message_decrypt and content_decode: real ciphertexts, envelopes, padding.
for v in vectors("message"):
    i, e = v["input"], v.get("expected") or {}
    c = v["category"]
    if c == "session_decrypt":
        add("message_decrypt", h(i["ciphertext"]))
        add("content_decode", h(e.get("plaintext", "")))
    elif c == "session_encrypt_deterministic":
        add("message_decrypt", h(e["ciphertext"]))
        add("content_decode", h(i["plaintext"]))
    elif c == "envelope_wire":
        for k in ("envelope", "websocket_message"):
            add("message_decrypt", h(e[k]))
            add("content_decode", h(e[k]))
        add("content_decode", h(i["content"]))
    elif c == "message_padding":
        add("content_decode", h(e["padded"]))
# Content { dataMessage { body: "hi", timestamp: 1 } }, then nested/length abuse.
data_message = b"\x0a\x02hi" + b"\x38\x01"
add("content_decode", b"\x0a" + bytes([len(data_message)]) + data_message)
add("content_decode", b"\x0a\xff\xff\xff\xff\x0f")
add("content_decode", b"\x0a\x02\x0a\x00" * 50)
add("content_decode", ben({"M": [[ACCOUNT, 1]], "n": "group", "t": 1}))

# mnemonic_decode: every phrase in the vectors, plus near misses.
for v in vectors("mnemonic"):
    p = v["input"].get("phrase") or (v.get("expected") or {}).get("phrase")
    if p:
        add("mnemonic_decode", p)
        add("mnemonic_decode", p.upper())
        add("mnemonic_decode", " ".join(p.split()[:-1]))
add("mnemonic_decode", "")
add("mnemonic_decode", "abbey " * 13)
add("mnemonic_decode", "zoom zoom zoom")

# attachment_decrypt: first byte selects the path (see the target).
for v in vectors("attachments"):
    i, e = v["input"], v.get("expected") or {}
    c = v["category"]
    if c == "attachment_legacy_decrypt":
        add("attachment_decrypt", b"\x00" + h(i["encrypted"]))
        add("attachment_decrypt", b"\x01" + struct.pack("<Q", 5) + h(i["encrypted"])[:-32])
    elif c == "attachment_legacy_encrypt":
        add("attachment_decrypt", b"\x00" + h(e["encrypted"]))
    elif c == "attachment_decrypt":
        add("attachment_decrypt", b"\x02" + struct.pack("<Q", 0) + h(i["encrypted"]))
    elif c == "attachment_encrypt":
        add("attachment_decrypt", b"\x03" + h(i["plaintext"]))
        add("attachment_decrypt", b"\x02" + h(e["encrypted"]))
add("attachment_decrypt", b"\x01" + struct.pack("<Q", 3) + b"\x00" * 16 + b"\x10" * 16)
add("attachment_decrypt", b"\x04" + struct.pack("<Q", 20_000_000) + ben({"v": 1, "s": 20_000_000, "c": 2031616, "k": b"\x01" * 32, "x": [["http://127.0.0.1/file/1", b"\x02" * 32]]}))
add("attachment_decrypt", b"\x05" + struct.pack("<Q", 20_000_000) + struct.pack("<Q", 1) + b"\x00" * 64)
for s in ("http://filev2.getsession.org/file/12345", "https://127.0.0.1:8443/file/abcdEFGH-_", "http://[::1]/file/1#p=abc", "86400", "-1", "99999999999999999999"):
    add("attachment_decrypt", b"\x06" + s.encode())

# node_headers: "node\nepoch\ntimestamp\nsignature\nbody", one correctly
# signed (Ed25519 over the §8.2 string), and malformed variants.
try:
    import base64
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import serialization

    sk = Ed25519PrivateKey.from_private_bytes(bytes([0x42]) * 32)
    pk = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    body = b"\x01" + ben([item])
    ts = 1_700_000_000_000
    signed = b"UmbraNodeRequest\nPOST\n/node/v1/push\n1\n%d\n" % ts + hashlib.blake2b(body, digest_size=32).digest()
    sig = base64.b64encode(sk.sign(signed))
    good = pk.hex().encode() + b"\n1\n%d\n" % ts + sig + b"\n" + body
    add("node_headers", good)
except ImportError:
    pk, sig = b"\x11" * 32, b"A" * 86 + b"=="
    good = pk.hex().encode() + b"\n1\n1700000000000\n" + sig + b"\n"
add("node_headers", good.replace(b"\n1\n", b"\n01\n", 1))
add("node_headers", good.replace(b"\n1\n", b"\n18446744073709551616\n", 1))
add("node_headers", pk.hex().upper().encode() + b"\n1\n-5\n" + sig + b"\n")
add("node_headers", b"\n\n\n\n")
add("node_headers", b"zz\n1\n1\n!!\n")

# group_decode: Content protobufs (control messages ride in dataMessage) and
# bencoded dictionaries shaped like bundles, state documents and key rings.
for d in seeds.get("content_decode", []):
    add("group_decode", d)
add("group_decode", ben({"g": 1, "k": [b"\x00" * 48], "~": b"\x00" * 64}))
add("group_decode", ben({"c": b"\x00" * 40, "g": 1, "v": 1, "~": b"\x00" * 64}))
add("group_decode", ben({"k": [[1, b"\x06" * 32]]}))
add("group_decode", bytes(132))
add("group_decode", bytes(1 + 24 + 16 + 64))

for target, items in seeds.items():
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    for data in items:
        with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
    print(f"{target}: {len(items)} seeds")
