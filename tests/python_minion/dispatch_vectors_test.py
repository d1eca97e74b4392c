"""The Python reading of PROTOCOL 8.1-8.2 (dispatch_signature.py) against
the test vectors the C++ library writes and checks
(common/security/testdata/dispatch_vectors.json): same signing bytes, same
signature from the same seed, and every vector verifies; one changed byte
does not."""

import json
import os
import sys
import unittest

RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", "."), "muster")
sys.path.insert(0, os.path.join(RUNFILES, "tests/python_minion"))

import nacl.signing  # noqa: E402

import dispatch_signature as ds  # noqa: E402
from proto import wire_pb2  # noqa: E402

VECTORS = os.path.join(RUNFILES, "common/security/testdata/dispatch_vectors.json")


def envelope_of(fields):
    e = wire_pb2.JobEnvelope(jid=fields["jid"], attempt=fields["attempt"],
                             function=fields["function"], args=fields["args"],
                             created_at_ms=fields["created_at_ms"],
                             deadline_ms=fields["deadline_ms"],
                             timeout_ms=fields["timeout_ms"],
                             datacenter=fields["datacenter"], submitter=fields["submitter"],
                             nonce=bytes.fromhex(fields["nonce_hex"]), key_id=fields["key_id"])
    e.target.type = fields["target_type"]
    e.target.expression = fields["target_expression"]
    if "list_proof" in fields:
        p = fields["list_proof"]
        e.list_proof.index = p["index"]
        e.list_proof.count = p["count"]
        e.list_proof.siblings.extend(bytes.fromhex(s) for s in p["siblings_hex"])
    return e


class DispatchVectorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(VECTORS) as f:
            cls.doc = json.load(f)
        cls.key = nacl.signing.SigningKey(bytes.fromhex(cls.doc["seed_hex"]))

    def test_key_and_key_id(self):
        public = bytes(self.key.verify_key)
        self.assertEqual(public.hex(), self.doc["public_key_hex"])
        self.assertEqual(ds.key_id(public), self.doc["key_id"])

    def test_every_vector(self):
        self.assertGreaterEqual(len(self.doc["vectors"]), 5)
        names = set()
        verifier = ds.Verifier([bytes(self.key.verify_key)])
        for v in self.doc["vectors"]:
            names.add(v["name"])
            with self.subTest(v["name"]):
                e = envelope_of(v["envelope"])
                # The fields as decoded from the protobuf bytes give the same.
                parsed = wire_pb2.JobEnvelope()
                parsed.ParseFromString(bytes.fromhex(v["envelope_protobuf_hex"]))
                message = ds.signing_bytes(e)
                self.assertEqual(message.hex(), v["signing_bytes_hex"])
                self.assertEqual(ds.signing_bytes(parsed), message)
                self.assertEqual(self.key.sign(message).signature.hex(), v["signature_hex"])
                self.assertEqual(parsed.signature.hex(), v["signature_hex"])
                self.assertIsNone(ds.Verifier([bytes(self.key.verify_key)]).check(parsed))
                self.assertIsNone(verifier.check(parsed))
                changed = wire_pb2.JobEnvelope()
                changed.CopyFrom(parsed)
                changed.created_at_ms += 1
                self.assertEqual(verifier.check(changed), ds.BAD_SIGNATURE)
        self.assertTrue(any(n.startswith("list_per_minion") for n in names))
        # The per-minion LIST vectors share the whole list's signature: one
        # verification, then the cache.
        self.assertGreaterEqual(verifier.cache_hits, 2)

    def test_refusal_reasons(self):
        v = next(x for x in self.doc["vectors"] if x["name"].startswith("list_per_minion"))
        e = wire_pb2.JobEnvelope()
        e.ParseFromString(bytes.fromhex(v["envelope_protobuf_hex"]))
        verifier = ds.Verifier([bytes(self.key.verify_key)])
        unsigned = wire_pb2.JobEnvelope()
        unsigned.CopyFrom(e)
        unsigned.ClearField("signature")
        self.assertEqual(verifier.check(unsigned), ds.UNSIGNED)
        other = ds.Verifier([bytes(nacl.signing.SigningKey.generate().verify_key)])
        self.assertEqual(other.check(e), ds.UNKNOWN_KEY)
        bad_proof = wire_pb2.JobEnvelope()
        bad_proof.CopyFrom(e)
        bad_proof.list_proof.index = bad_proof.list_proof.count
        self.assertEqual(verifier.check(bad_proof), ds.BAD_LIST_PROOF)
        extra = wire_pb2.JobEnvelope()
        extra.CopyFrom(e)
        extra.list_proof.siblings.append(b"\x00" * 32)
        self.assertEqual(verifier.check(extra), ds.BAD_LIST_PROOF)
        stranger = wire_pb2.JobEnvelope()
        stranger.CopyFrom(e)
        stranger.target.expression = "mallory"
        self.assertEqual(verifier.check(stranger), ds.BAD_SIGNATURE)
        self.assertIsNone(verifier.check(e))


if __name__ == "__main__":
    unittest.main()
