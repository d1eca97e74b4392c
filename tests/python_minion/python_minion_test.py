"""Protocol conformance: a minion written in Python from docs/PROTOCOL.md
alone works with the real relayd over a real Redis.

Starts redis-server and relayd on free loopback ports, starts
python_minion.py, then plays jobd's part in Redis: waits for the minion in
the relay's inventory events, writes a JobEnvelope to the job stream, and
checks the relay's delivery event and the minion's return in the returns
stream, exactly once. Secure (PROTOCOL 8): the test signs each envelope as
jobd would (PyNaCl), the relay trusts that key and auto-accepts minion keys,
and the minion pins the relay's CURVE key from its relay_curve.pub.

Transitional: a relayd built without the security flags (before issue 16's
relay work is merged) is run as it is, with the minion --insecure.
"""

import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import zlib
import unittest

import nacl.signing
import redis

sys.path.insert(0, os.path.join(os.environ.get("TEST_SRCDIR", "."), "muster",
                                "tests/python_minion"))
import dispatch_signature  # noqa: E402

from proto import job_service_pb2
from proto import wire_pb2

RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", "."), "muster")


_GIVEN_PORTS = set()


def free_port():
    """A loopback TCP port free now, below the kernel's ephemeral range.

    A port from port 0 lies in that range, and an outgoing connection can
    take it as its local port before relayd binds it ("Address already in
    use"); ports below the range are only taken by an explicit bind.
    """
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    first, last = max(1024, low - 12000), low - 1
    candidates = list(range(first, last + 1)) if last - first >= 1000 else []
    random.shuffle(candidates)
    for port in candidates:
        if port in _GIVEN_PORTS:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN_PORTS.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class PythonMinionTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.procs = []
        redis_port = free_port()
        self.start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                    "--dir", self.dir, "--save", "", "--appendonly", "no"], "redis")
        self.redis = redis.Redis(port=redis_port)
        wait_for(self.ping, 10, "redis")
        self.publish, self.ret = free_port(), free_port()
        relayd = os.path.join(RUNFILES, "relay/relayd")
        run = subprocess.run([relayd, "--helpfull"], capture_output=True)
        help_text = run.stdout + run.stderr
        self.secure = b"auto_accept" in help_text and b"trusted_key" in help_text
        print("relayd %s" % ("secure: signed dispatches, CURVE" if self.secure
                             else "without security flags: minion --insecure"), flush=True)
        self.jobd = nacl.signing.SigningKey.generate()
        relay_security, minion_security = [], ["--insecure"]
        if self.secure:
            relay_security = ["--trusted_key=" + bytes(self.jobd.verify_key).hex(),
                              "--auto_accept"]
            minion_security = ["--trusted_key", bytes(self.jobd.verify_key).hex(),
                               "--relay_public_key_file",
                               os.path.join(self.dir, "relay_curve.pub"),
                               "--state_dir", os.path.join(self.dir, "minion")]
        self.start([relayd, "--datacenter=dc1", "--redis=127.0.0.1:%d" % redis_port,
                    "--publish_port=%d" % self.publish, "--return_port=%d" % self.ret,
                    "--state_dir=" + self.dir, "--heartbeat_interval_ms=200"]
                   + relay_security, "relayd")
        if self.secure:
            wait_for(lambda: os.path.exists(os.path.join(self.dir, "relay_curve.pub")), 10,
                     "the relay's public key file")
        self.start([sys.executable, os.path.join(RUNFILES, "tests/python_minion/python_minion.py"),
                    "--id", "py-0001.dc1", "--publish", str(self.publish),
                    "--return", str(self.ret), "--grains", "os=python,role=test"]
                   + minion_security, "minion")

    def tearDown(self):
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def start(self, argv, name):
        env = dict(os.environ)
        with open(os.path.join(self.dir, name + ".log"), "wb") as log:
            self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                               env=env))

    def ping(self):
        try:
            return self.redis.ping()
        except redis.exceptions.ConnectionError:
            return False

    def events(self):
        out = []
        for _, fields in self.redis.xrange("muster:events"):
            event = wire_pb2.RelayEvent()
            event.ParseFromString(fields[b"event"])
            out.append(event)
        return out

    def batches(self):
        out = []
        for entry_id, fields in self.redis.xrange("muster:returns"):
            batch = wire_pb2.ReturnBatch()
            batch.ParseFromString(fields[b"batch"])
            out.append((batch, entry_id))
        return out

    def returns(self):
        return [(batch, r) for batch, _ in self.batches() for r in batch.returns]

    def dispatch(self, jid, target_type, expression, function, args=()):
        now = int(time.time() * 1000)
        job = wire_pb2.JobEnvelope(jid=jid, attempt=1, function=function, args=list(args),
                                   created_at_ms=now, deadline_ms=now + 30000,
                                   timeout_ms=30000, datacenter="dc1", submitter="test")
        job.target.type = target_type
        job.target.expression = expression
        if self.secure:
            dispatch_signature.sign(self.jobd, job)
        self.redis.xadd("muster:jobs:dc1", {"job": job.SerializeToString()})

    def test_minion_joins_runs_jobs_and_its_returns_reach_redis_once(self):
        def joined():
            for event in self.events():
                if event.HasField("inventory"):
                    for m in event.inventory.upserts:
                        if m.minion_id == "py-0001.dc1":
                            return m
            return None
        member = wait_for(joined, 20, "the python minion in the relay's inventory events")
        self.assertEqual(member.grains["os"], "python")

        # The relay only publishes once a subscriber may have joined; a job is
        # retried with a new jid until the first return proves the path works.
        jid_base = 20261128000000000000
        attempts = 0
        while not self.returns():
            attempts += 1
            self.assertLess(attempts, 40, "no return from the python minion")
            self.dispatch(str(jid_base + attempts), job_service_pb2.GLOB, "py-*", "test.ping")
            time.sleep(0.25)
        self.dispatch("20261128000000000100", job_service_pb2.LIST, "other,py-0001.dc1",
                      "test.echo", ["hello", "world"])
        self.dispatch("20261128000000000101", job_service_pb2.LIST, "someone-else",
                      "test.echo", ["not for me"])
        # Grain and compound targets, matched by the minion itself (target_matcher.py).
        self.dispatch("20261128000000000102", job_service_pb2.COMPOUND,
                      "G@role:test and(py-*)and not E@py-0002.*", "test.ping")
        self.dispatch("20261128000000000103", job_service_pb2.GRAIN, "role:web", "test.ping")

        def echoed():
            return [r for b, r in self.returns() if r.jid == "20261128000000000100"]
        echo = wait_for(echoed, 20, "the test.echo return")
        self.assertEqual(len(echo), 1)
        self.assertTrue(echo[0].success)
        self.assertEqual(echo[0].stdout, b"hello world")
        batch = [b for b, r in self.returns() if r.jid == "20261128000000000100"][0]
        self.assertEqual(batch.datacenter, "dc1")
        self.assertTrue(batch.relay_id)

        wait_for(lambda: [r for b, r in self.returns() if r.jid == "20261128000000000102"],
                 20, "the return of the compound-targeted job")

        def delivered():
            return [e for e in self.events() if e.HasField("delivery")
                    and e.delivery.jid == "20261128000000000101"]
        wait_for(delivered, 20, "the delivery event of the list job")
        time.sleep(3)  # longer than the minion's first resend interval
        keys = [(r.jid, r.attempt, r.minion_id) for b, r in self.returns()]
        self.assertEqual(len(keys), len(set(keys)), "an acknowledged return was resent")
        self.assertNotIn("20261128000000000101", [k[0] for k in keys])
        self.assertNotIn("20261128000000000103", [k[0] for k in keys])

        # Per-minion receipts (PROTOCOL 3.6): jobd's expected-minions key names
        # the python minion, the target does not reach it, so the relay re-sends
        # the dispatch to it by name (a JOB message on its DEALER) and the
        # minion answers with a DECLINED receipt, which the relay reports.
        jid = "20261128000000000200"
        expected = wire_pb2.ExpectedMinions(minion_ids=["py-0001.dc1"])
        self.redis.set("muster:expected:dc1:%s:1" % jid,
                       zlib.compress(expected.SerializeToString()))
        self.dispatch(jid, job_service_pb2.LIST, "someone-else", "test.ping")

        def declined():
            for batch, _ in self.batches():
                for report in batch.receipts:
                    if report.jid == jid and "py-0001.dc1" in report.declined:
                        return report
            return None
        report = wait_for(declined, 20, "the relay's report of the minion's DECLINED receipt")
        self.assertEqual(list(report.minion_ids), ["py-0001.dc1"])


if __name__ == "__main__":
    unittest.main()
