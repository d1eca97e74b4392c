"""Signed dispatches (docs/PROTOCOL.md 8.1-8.3), written from the document
alone, as another-language minion would: the signing bytes of a JobEnvelope,
the Merkle root of a LIST target and the root an inclusion proof leads to,
and the check a minion makes before anything else looks at an envelope.
Ed25519 is PyNaCl's (Debian python3-nacl, libsodium underneath).
Checked against common/security/testdata/dispatch_vectors.json by
dispatch_vectors_test.py.
"""

import hashlib
import os
import re
import struct
import time

import nacl.exceptions
import nacl.signing

CONTEXT = b"muster.dispatch.v1"
LIST = 2
WHITESPACE = b" \t\n\v\f\r"  # PROTOCOL 7.1: the six ASCII whitespace bytes

# Refusal reasons (PROTOCOL 8.3); None means accepted.
UNSIGNED = "unsigned"
UNKNOWN_KEY = "unknown_key"
BAD_SIGNATURE = "bad_signature"
BAD_LIST_PROOF = "bad_list_proof"


class ProofError(ValueError):
    pass


def key_id(public_key):
    """First 8 bytes of SHA-256 of the 32-byte public key, 16 hex digits."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def list_ids(expression):
    """A LIST's ids (PROTOCOL 7.3, 8.2): split on ',' and whitespace, empty
    items skipped, each id kept at its first occurrence."""
    seen, ids = set(), []
    for item in re.split(b"[," + re.escape(WHITESPACE) + b"]+", expression):
        if item and item not in seen:
            seen.add(item)
            ids.append(item)
    if not ids:
        raise ProofError("LIST target without ids")
    return ids


def _leaf(item):
    return hashlib.sha256(b"\x00" + item).digest()


def _node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(ids):
    level = [_leaf(i) for i in ids]
    while len(level) > 1:
        nxt = [_node(level[k], level[k + 1]) for k in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # the odd last hash is carried up
        level = nxt
    return level[0]


def root_from_proof(item, index, count, siblings):
    """The root the proof leads to from `item` (PROTOCOL 8.2's loop)."""
    if count == 0 or index >= count or any(len(s) != 32 for s in siblings):
        raise ProofError("malformed proof")
    h, idx, m, k = _leaf(item), index, count, 0
    while m > 1:
        if idx % 2 == 1:
            if k >= len(siblings):
                raise ProofError("too few siblings")
            h = _node(siblings[k], h)
            k += 1
        elif idx + 1 < m:
            if k >= len(siblings):
                raise ProofError("too few siblings")
            h = _node(h, siblings[k])
            k += 1
        idx //= 2
        m = (m + 1) // 2
    if k != len(siblings):
        raise ProofError("too many siblings")
    return h


def _item(data):
    return struct.pack(">I", len(data)) + data


def signing_bytes(envelope):
    """The signing bytes of a wire.v1.JobEnvelope (PROTOCOL 8.1). Raises
    ProofError for a LIST target without ids or with a malformed proof."""
    target = envelope.target
    expression = target.expression.encode("utf-8")
    if target.type == LIST:
        if envelope.HasField("list_proof"):
            proof = envelope.list_proof
            ids = list_ids(expression)
            if len(ids) != 1:
                raise ProofError("a proof for more than one id")
            root = root_from_proof(ids[0], proof.index, proof.count, list(proof.siblings))
            count = proof.count
        else:
            ids = list_ids(expression)
            root, count = merkle_root(ids), len(ids)
        target_item, target_count = root, count
    else:
        target_item, target_count = expression, 0
    out = [
        _item(CONTEXT),
        _item(envelope.jid.encode("utf-8")),
        _item(struct.pack(">I", envelope.attempt)),
        _item(struct.pack(">I", target.type)),
        _item(target_item),
        _item(struct.pack(">I", target_count)),
        _item(envelope.function.encode("utf-8")),
        _item(struct.pack(">I", len(envelope.args))),
    ]
    out += [_item(arg.encode("utf-8")) for arg in envelope.args]
    out += [
        _item(struct.pack(">q", envelope.created_at_ms)),
        _item(struct.pack(">q", envelope.deadline_ms)),
        _item(struct.pack(">I", envelope.timeout_ms)),
        _item(envelope.datacenter.encode("utf-8")),
        _item(envelope.submitter.encode("utf-8")),
        _item(envelope.nonce),
        _item(envelope.key_id.encode("ascii", "replace")),
    ]
    return b"".join(out)


def sign(signing_key, envelope):
    """Sets nonce, key_id and signature (what jobd does; for tests)."""
    envelope.nonce = os.urandom(16)
    envelope.key_id = key_id(bytes(signing_key.verify_key))
    envelope.signature = signing_key.sign(signing_bytes(envelope)).signature


class Verifier:
    """Checks envelopes against trusted public keys (32-byte strings), with
    a cache: an envelope verified once is accepted again without a second
    Ed25519 verification until its deadline."""

    def __init__(self, public_keys):
        self.keys = {key_id(k): nacl.signing.VerifyKey(k) for k in public_keys}
        self.verified = {}  # sha256(signature || signing bytes) -> deadline_ms
        self.cache_hits = 0

    def check(self, envelope):
        """None when accepted, else the reason (PROTOCOL 8.3)."""
        if len(envelope.signature) != 64 or len(envelope.nonce) != 16 \
                or len(envelope.key_id) != 16:
            return UNSIGNED
        key = self.keys.get(envelope.key_id)
        if key is None:
            return UNKNOWN_KEY
        try:
            message = signing_bytes(envelope)
        except ProofError:
            return BAD_LIST_PROOF
        digest = hashlib.sha256(envelope.signature + message).digest()
        if digest in self.verified:
            self.cache_hits += 1
            return None
        try:
            key.verify(message, envelope.signature)
        except nacl.exceptions.BadSignatureError:
            return BAD_SIGNATURE
        now_ms = int(time.time() * 1000)
        self.verified = {d: t for d, t in self.verified.items() if t >= now_ms} \
            if len(self.verified) > 10000 else self.verified
        self.verified[digest] = envelope.deadline_ms
        return None
