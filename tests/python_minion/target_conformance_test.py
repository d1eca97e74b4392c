"""The target conformance corpus (common/target/testdata/target_conformance.tsv)
run by the Python minion's matcher, target_matcher.py, which was written from
docs/PROTOCOL.md ("Target grammar"). jobd's matcher and the C++ minion run
the same file (common/target and minion target_conformance_test)."""

import os
import re
import sys
import unittest

RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", "."), "muster")
sys.path.insert(0, os.path.join(RUNFILES, "tests/python_minion"))

import target_matcher  # noqa: E402
from proto import job_service_pb2  # noqa: E402

CORPUS = os.path.join(RUNFILES, "common/target/testdata/target_conformance.tsv")


def decode(field):
    """The corpus' only escape: <xHH> is the byte 0xHH."""
    return re.sub(rb"<x([0-9A-Fa-f]{2})>", lambda m: bytes([int(m.group(1), 16)]), field)


def load_corpus(path=CORPUS):
    cases = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip(b"\n").rstrip(b"\r")
            if not line or line.startswith(b"#"):
                continue
            fields = line.split(b"\t")
            if len(fields) not in (5, 6):
                raise ValueError("line %d: %d fields" % (number, len(fields)))
            grains = {}
            if fields[3] != b"-":
                for item in fields[3].split(b";"):
                    key, sep, value = item.partition(b"=")
                    if not sep:
                        raise ValueError("line %d: grain without '='" % number)
                    grains[decode(key).decode("utf-8")] = decode(value).decode("utf-8")
            expect = fields[4].decode()
            if expect not in ("match", "no_match", "error"):
                raise ValueError("line %d: expectation %r" % (number, expect))
            cases.append({
                "line": number,
                "type": job_service_pb2.TargetType.Value(fields[0].decode()),
                "type_name": fields[0].decode(),
                "expression": decode(fields[1]).decode("utf-8"),
                "minion_id": decode(fields[2]).decode("utf-8"),
                "grains": grains,
                "expect": expect,
            })
    return cases


class TargetConformanceTest(unittest.TestCase):
    def test_corpus_is_large(self):
        cases = load_corpus()
        self.assertGreaterEqual(len(cases), 120)
        self.assertEqual({c["type_name"] for c in cases},
                         {"GLOB", "LIST", "PCRE", "GRAIN", "COMPOUND", "TARGET_TYPE_UNSPECIFIED"})

    def test_every_case_agrees(self):
        failures = []
        for c in load_corpus():
            where = "line %d: %s %r on %r" % (c["line"], c["type_name"], c["expression"],
                                             c["minion_id"])
            try:
                matcher = target_matcher.parse(c["type"], c["expression"])
            except target_matcher.TargetError as e:
                if c["expect"] != "error":
                    failures.append("%s: rejected (%s), expected %s" % (where, e, c["expect"]))
                continue
            if c["expect"] == "error":
                failures.append(where + ": accepted, expected error")
                continue
            got = "match" if matcher.matches(c["minion_id"], c["grains"]) else "no_match"
            if got != c["expect"]:
                failures.append("%s: %s, expected %s" % (where, got, c["expect"]))
        self.assertEqual(failures, [], "\n".join(failures))

    def test_minion_entry_point_uses_the_proto_target(self):
        # What python_minion.py calls for each job: a Target message.
        target = job_service_pb2.Target(type=job_service_pb2.COMPOUND,
                                        expression="G@role:web and not(web-1)")
        self.assertTrue(target_matcher.matches(target, "web-2", {"role": "web"}))
        self.assertFalse(target_matcher.matches(target, "web-1", {"role": "web"}))
        bad = job_service_pb2.Target(type=job_service_pb2.COMPOUND, expression="X@foo")
        self.assertFalse(target_matcher.matches(bad, "X@foo", {}))


if __name__ == "__main__":
    unittest.main()
