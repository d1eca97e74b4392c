"""PROTOCOL 8 from the minion's side, in Python only: python_minion.py
against a relay's bus written here with pyzmq (CURVE servers, a ZAP handler)
and jobd's signature made with PyNaCl. A job signed by the trusted key runs
(a LIST one through its per-minion proof); unsigned, foreign-key, altered
and replayed ones never do, are never answered, and are counted in the
heartbeats; a key the relay refuses is retried and joins once accepted.
"""

import os
import subprocess
import sys
import tempfile
import time
import unittest

import nacl.signing
import zmq
import zmq.utils.z85

RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", "."), "muster")
sys.path.insert(0, os.path.join(RUNFILES, "tests/python_minion"))

import dispatch_signature as ds  # noqa: E402
from proto import wire_pb2  # noqa: E402

MINION_ID = "py-0001.dc1"


class Bus:
    """The relay's two CURVE sockets and a ZAP handler refusing `refused`."""

    def __init__(self):
        self.context = zmq.Context()
        self.public, secret = zmq.curve_keypair()
        self.zap = self.context.socket(zmq.REP)
        self.zap.bind("inproc://zeromq.zap.01")
        self.refused = set()
        self.pub = self.context.socket(zmq.XPUB)
        self.router = self.context.socket(zmq.ROUTER)
        for s in (self.pub, self.router):
            s.linger = 0
            s.curve_server = True
            s.curve_secretkey = secret
            s.zap_domain = b"muster"
        self.publish_port = self.pub.bind_to_random_port("tcp://127.0.0.1")
        self.return_port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.heartbeats, self.returns, self.receipts = [], [], []
        self.subscribed, self.zap_refusals, self.identity = 0, 0, None
        self.poller = zmq.Poller()
        for s in (self.zap, self.pub, self.router):
            self.poller.register(s, zmq.POLLIN)

    def close(self):
        self.context.destroy(linger=0)

    def pump_until(self, done, seconds):
        deadline = time.time() + seconds
        while not done():
            if time.time() > deadline:
                return False
            for s, _ in self.poller.poll(50):
                frames = s.recv_multipart()
                if s is self.zap:
                    key = zmq.utils.z85.encode(frames[6])
                    refused = key in self.refused
                    self.zap_refusals += refused
                    s.send_multipart([b"1.0", frames[1], b"400" if refused else b"200",
                                      b"", key, b""])
                elif s is self.pub:
                    if frames[0][:1] == b"\x01":
                        self.subscribed += 1
                elif frames[1] == b"HB":
                    batch = wire_pb2.HeartbeatBatch.FromString(frames[2])
                    self.heartbeats += list(batch.heartbeats)
                    self.identity = frames[0]
                elif frames[1] == b"RCV":
                    self.receipts += list(wire_pb2.ReceiptBatch.FromString(frames[2]).receipts)
                elif frames[1] == b"RET":
                    batch = wire_pb2.ReturnBatch.FromString(frames[2])
                    self.returns += list(batch.returns)
                    ack = wire_pb2.ReturnAck()
                    for r in batch.returns:
                        ack.keys.add(jid=r.jid, attempt=r.attempt, minion_id=r.minion_id)
                    self.router.send_multipart([frames[0], b"ACK", ack.SerializeToString()])
        return True

    def publish(self, topic, job):
        self.pub.send_multipart([topic.encode(), job.SerializeToString()])

    def resend(self, job):
        self.router.send_multipart([self.identity, b"JOB", ("@%s@" % MINION_ID).encode(),
                                    job.SerializeToString()])

    def returned(self, jid):
        return [r for r in self.returns if r.jid == jid]


def make_job(jid, target_type, expression, function="test.echo", args=("hi",)):
    now = int(time.time() * 1000)
    job = wire_pb2.JobEnvelope(jid=jid, attempt=1, function=function, args=list(args),
                               created_at_ms=now, deadline_ms=now + 30000,
                               timeout_ms=30000, datacenter="dc1", submitter="test")
    job.target.type = target_type
    job.target.expression = expression
    return job


class PythonMinionSecurityTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.bus = Bus()
        self.jobd = nacl.signing.SigningKey.generate()
        self.proc = None

    def tearDown(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
        self.bus.close()

    def log(self):
        with open(os.path.join(self.dir, "minion.log")) as f:
            return f.read()

    def start_minion(self, extra=()):
        argv = [sys.executable, os.path.join(RUNFILES, "tests/python_minion/python_minion.py"),
                "--id", MINION_ID, "--publish", str(self.bus.publish_port),
                "--return", str(self.bus.return_port), "--heartbeat_ms", "200",
                "--trusted_key", bytes(self.jobd.verify_key).hex(),
                "--relay_public_key", self.bus.public.decode(),
                "--state_dir", os.path.join(self.dir, "state")] + list(extra)
        with open(os.path.join(self.dir, "minion.log"), "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def signed(self, job):
        ds.sign(self.jobd, job)
        return job

    def test_only_signed_jobs_run_and_refusals_are_counted(self):
        self.start_minion()
        self.assertTrue(self.bus.pump_until(lambda: self.bus.heartbeats and self.bus.subscribed >= 2,
                                            20), self.log())
        self.assertTrue(os.stat(os.path.join(self.dir, "state/minion_curve.key")).st_mode
                        & 0o077 == 0)
        # Signed jobs: a glob, and a LIST published per minion with its proof.
        glob = self.signed(make_job("1", 1, "py-*", args=["glob"]))
        ids = [b"other.dc1", MINION_ID.encode(), b"third.dc1"]
        whole = self.signed(make_job("2", 2, "other.dc1, %s third.dc1" % MINION_ID,
                                     args=["list"]))
        per_minion = wire_pb2.JobEnvelope()
        per_minion.CopyFrom(whole)
        per_minion.target.expression = MINION_ID
        per_minion.list_proof.index, per_minion.list_proof.count = 1, 3
        # The siblings from the leaf up (PROTOCOL 8.2): leaf 0, then leaf 2.
        per_minion.list_proof.siblings.extend([ds._leaf(ids[0]), ds._leaf(ids[2])])
        self.assertEqual(ds.root_from_proof(ids[1], 1, 3, list(per_minion.list_proof.siblings)),
                         ds.merkle_root(ids))

        def until_returned(jid):
            self.assertTrue(self.bus.pump_until(lambda: self.bus.returned(jid), 10),
                            self.log())

        for attempt in range(20):  # the first publishes may precede the subscription
            self.bus.publish("*", glob)
            if self.bus.pump_until(lambda: self.bus.returned("1"), 0.5):
                break
        until_returned("1")
        self.bus.publish("@%s@" % MINION_ID, per_minion)
        until_returned("2")
        self.assertEqual(self.bus.returned("2")[0].stdout, b"list")

        # Refused: unsigned (broadcast, by name, re-sent), a foreign key, one
        # byte changed, attempt + 100, a proof for another id.
        self.bus.publish("*", make_job("10", 1, "*"))
        self.bus.publish("@%s@" % MINION_ID, make_job("11", 1, "*"))
        self.bus.resend(make_job("12", 1, "*"))
        foreign = make_job("13", 1, "*")
        ds.sign(nacl.signing.SigningKey.generate(), foreign)
        self.bus.publish("*", foreign)
        altered = self.signed(make_job("14", 1, "*"))
        altered.args[0] = "changed"
        self.bus.publish("*", altered)
        replay = wire_pb2.JobEnvelope()
        replay.CopyFrom(glob)
        replay.attempt = 101
        self.bus.publish("*", replay)
        self.bus.publish("*", replay)
        stranger = wire_pb2.JobEnvelope()
        stranger.CopyFrom(per_minion)
        stranger.jid = "2"
        stranger.list_proof.index = 7
        self.bus.publish("@%s@" % MINION_ID, stranger)
        self.bus.publish("*", self.signed(make_job("15", 1, "*", args=["marker"])))
        until_returned("15")

        expected = {"unsigned": 3, "unknown_key": 1, "bad_signature": 3, "bad_list_proof": 1}
        self.assertTrue(self.bus.pump_until(
            lambda: dict(self.bus.heartbeats[-1].dispatches_refused) == expected, 10),
            (dict(self.bus.heartbeats[-1].dispatches_refused), self.log()))
        answered = {(r.jid, r.attempt) for r in self.bus.returns + self.bus.receipts}
        self.assertEqual(answered, {("1", 1), ("2", 1), ("15", 1)})
        self.assertEqual(self.log().count("refused job 1 attempt 101: bad_signature"), 1)

    def test_refused_key_is_retried_until_accepted(self):
        os.makedirs(os.path.join(self.dir, "state"))
        public, secret = zmq.curve_keypair()
        path = os.path.join(self.dir, "state/minion_curve.key")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("public %s\nsecret %s\n" % (public.decode(), secret.decode()))
        self.bus.refused.add(public)
        self.start_minion()
        self.assertTrue(self.bus.pump_until(lambda: self.bus.zap_refusals >= 4, 20), self.log())
        self.assertEqual(self.bus.heartbeats, [])
        self.bus.refused.clear()
        self.assertTrue(self.bus.pump_until(lambda: self.bus.heartbeats and self.bus.subscribed,
                                            20), self.log())
        self.assertTrue(self.bus.pump_until(lambda: self.bus.returned("1") or
                                            self.bus.publish("*", self.signed(
                                                make_job("1", 1, "*"))), 10))


if __name__ == "__main__":
    unittest.main()
