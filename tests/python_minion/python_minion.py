"""A compatible Muster minion in Python, written from docs/PROTOCOL.md alone.

It exists to prove that the protocol document is enough to implement a
minion in another language: it subscribes to the relay's publish port,
checks jobd's signature on every job before anything else
(dispatch_signature.py, PROTOCOL 8.1-8.3: a refused job is not run, not
answered, counted by reason in heartbeats and logged once), matches every
kind of target (target_matcher.py, checked against the conformance corpus),
acknowledges each dispatch with a receipt (and handles dispatches the relay
re-sends on the DEALER), runs test.ping / test.echo, sends returns on a
DEALER socket until the relay acknowledges them, and heartbeats its grains.
Both sockets are CURVE clients pinned to the relay's public key, with the
minion's own key pair kept in its state directory (PROTOCOL 8.4); a
connection the relay refuses (key not accepted yet) is re-made.

usage: python_minion.py --id ID --publish PORT --return PORT [--grains k=v,...]
         (--trusted_key HEX | --trusted_keys FILE) (--relay_public_key Z85 |
         --relay_public_key_file PATH) [--state_dir DIR] | --insecure
"""

import argparse
import os
import sys
import time

import zmq
import zmq.utils.monitor

import dispatch_signature
from proto import wire_pb2
from target_matcher import matches

REMAKE_FIRST, REMAKE_MAX = 1.0, 15.0


def run(job):
    """(success, retcode, stdout, stderr); output is bytes (Return.stdout is `bytes`)."""
    if job.function == "test.ping":
        return True, 0, b"true", b""
    if job.function == "test.echo":
        return True, 0, " ".join(job.args).encode(), b""
    return False, 1, b"", ("unknown function %s" % job.function).encode()


def trusted_keys(args):
    hexes = [k for k in ",".join(args.trusted_key).split(",") if k]
    if args.trusted_keys:
        with open(args.trusted_keys) as f:
            hexes += [line.strip() for line in f
                      if line.strip() and not line.strip().startswith("#")]
    return [bytes.fromhex(h) for h in hexes]


def load_or_create_curve_key(path):
    """The key pair file of PROTOCOL 8.4: "public <z85>" and "secret <z85>"
    lines, mode 0600, created on first start."""
    if not os.path.exists(path):
        public, secret = zmq.curve_keypair()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("public %s\nsecret %s\n" % (public.decode(), secret.decode()))
    fields = dict(line.split(" ", 1) for line in open(path).read().splitlines() if line)
    return fields["public"].encode(), fields["secret"].encode()


class Link:
    """One socket's connection. libzmq gives a connection up after a refused
    handshake; it is re-made after 1 s, doubling up to 15 s, until one
    completes."""

    def __init__(self, socket, endpoint):
        self.socket, self.endpoint = socket, endpoint
        self.monitor = socket.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
            | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        self.remake_at, self.backoff = None, REMAKE_FIRST
        socket.connect(endpoint)

    def read_events(self):
        """True when a handshake just completed."""
        handshake = False
        while self.monitor.poll(0):
            event = zmq.utils.monitor.recv_monitor_message(self.monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.remake_at, self.backoff, handshake = None, REMAKE_FIRST, True
            elif self.remake_at is None:
                self.remake_at = time.time() + self.backoff
        return handshake

    def remake_if_due(self, now):
        if self.remake_at is None or now < self.remake_at:
            return
        try:
            self.socket.disconnect(self.endpoint)
        except zmq.ZMQError:
            pass  # already given up by libzmq
        self.socket.connect(self.endpoint)
        self.backoff = min(self.backoff * 2, REMAKE_MAX)
        self.remake_at = now + self.backoff


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--publish", type=int, required=True)
    parser.add_argument("--return", dest="ret", type=int, required=True)
    parser.add_argument("--grains", default="")
    parser.add_argument("--heartbeat_ms", type=int, default=500)
    parser.add_argument("--trusted_key", action="append", default=[])
    parser.add_argument("--trusted_keys", default="")
    parser.add_argument("--relay_public_key", default="")
    parser.add_argument("--relay_public_key_file", default="")
    parser.add_argument("--state_dir", default="")
    parser.add_argument("--insecure", action="store_true")
    args = parser.parse_args()
    grains = dict(kv.split("=", 1) for kv in args.grains.split(",") if kv)

    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    # PROTOCOL section 6: the largest message parts a minion takes.
    for socket in (sub, dealer):
        socket.setsockopt(zmq.MAXMSGSIZE, (1 << 20) + 4096)
    verifier = None
    if args.insecure:
        print("INSECURE: no signature checks, no CURVE", flush=True)
    else:
        keys = trusted_keys(args)
        relay_key = args.relay_public_key
        if args.relay_public_key_file:
            relay_key = open(args.relay_public_key_file).read().strip()
        if not keys or not relay_key:
            sys.exit("python_minion: a trusted key and the relay's public key are required "
                     "(or --insecure)")
        verifier = dispatch_signature.Verifier(keys)
        state_dir = args.state_dir or "python-minion-%s" % args.id
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        public, secret = load_or_create_curve_key(os.path.join(state_dir, "minion_curve.key"))
        for socket in (sub, dealer):
            socket.curve_serverkey = relay_key.encode()
            socket.curve_publickey = public
            socket.curve_secretkey = secret
    sub.setsockopt(zmq.SUBSCRIBE, b"*")
    sub.setsockopt(zmq.SUBSCRIBE, ("@%s@" % args.id).encode())
    links = [Link(sub, "tcp://%s:%d" % (args.host, args.publish)),
             Link(dealer, "tcp://%s:%d" % (args.host, args.ret))]

    done = set()        # (jid, attempt) already run
    outbox = {}         # (jid, attempt, minion) -> [Return, next_send_time, interval]
    refused = {}        # reason -> count (PROTOCOL 8.3), sent in heartbeats
    logged = set()      # (jid, attempt, reason) refusals already logged
    next_heartbeat = 0.0
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    poller.register(dealer, zmq.POLLIN)
    print("python minion %s ready" % args.id, flush=True)
    while True:
        now = time.time()
        for link in links:
            if link.read_events() and link.socket is dealer:
                next_heartbeat = 0.0  # a heartbeat at every (re)connection
            link.remake_if_due(now)
        if now >= next_heartbeat:
            batch = wire_pb2.HeartbeatBatch()
            hb = batch.heartbeats.add()
            hb.minion_id = args.id
            hb.grains.update(grains)
            hb.sent_at_ms = int(now * 1000)
            hb.interval_ms = args.heartbeat_ms
            hb.version = "python-minion"
            hb.dispatches_refused.update(refused)
            try:
                dealer.send_multipart([b"HB", batch.SerializeToString()], zmq.NOBLOCK)
            except zmq.Again:
                pass
            next_heartbeat = now + args.heartbeat_ms / 1000.0
        due = [entry for entry in outbox.values() if entry[1] <= now]
        if due:
            batch = wire_pb2.ReturnBatch()
            for entry in due:
                batch.returns.add().CopyFrom(entry[0])
                entry[2] = min(entry[2] * 2, 30.0)
                entry[1] = now + entry[2]
            try:
                dealer.send_multipart([b"RET", batch.SerializeToString()], zmq.NOBLOCK)
            except zmq.Again:
                pass
        for socket, _ in poller.poll(100):
            frames = socket.recv_multipart()
            # A job: [topic, JobEnvelope] on the SUB, or re-sent by the relay
            # on the DEALER as [JOB, topic, JobEnvelope] (PROTOCOL 3.6).
            if socket is sub or (len(frames) == 3 and frames[0] == b"JOB"):
                job_frames = frames if socket is sub else frames[1:]
                if len(job_frames) != 2:
                    continue
                direct = job_frames[0] != b"*"
                job = wire_pb2.JobEnvelope()
                try:
                    job.ParseFromString(job_frames[1])
                except Exception:  # malformed: dropped
                    continue
                # Verified before anything else (PROTOCOL 8.1, before 3.1 step 2).
                reason = verifier.check(job) if verifier else None
                if reason is not None:
                    refused[reason] = refused.get(reason, 0) + 1
                    if (job.jid, job.attempt, reason) not in logged:
                        if len(logged) > 10000:  # forgeries cannot grow it without bound
                            logged.clear()
                        logged.add((job.jid, job.attempt, reason))
                        print("refused job %s attempt %d: %s" % (job.jid, job.attempt, reason),
                              flush=True)
                    continue
                key = (job.jid, job.attempt)
                status = None
                if not matches(job.target, args.id, grains):
                    status = wire_pb2.Receipt.DECLINED if direct else None
                elif key in done:
                    status = wire_pb2.Receipt.ACCEPTED  # never run twice; acknowledge again
                elif job.deadline_ms and job.deadline_ms < int(time.time() * 1000):
                    status = wire_pb2.Receipt.DECLINED if direct else None
                else:
                    status = wire_pb2.Receipt.ACCEPTED
                if status is not None:
                    receipts = wire_pb2.ReceiptBatch()
                    receipts.receipts.add(jid=job.jid, attempt=job.attempt, minion_id=args.id,
                                          status=status,
                                          received_at_ms=int(time.time() * 1000))
                    try:
                        dealer.send_multipart([b"RCV", receipts.SerializeToString()],
                                              zmq.NOBLOCK)
                    except zmq.Again:
                        pass
                if status != wire_pb2.Receipt.ACCEPTED or key in done:
                    continue
                done.add(key)
                started = int(time.time() * 1000)
                ok, retcode, out, err = run(job)
                ret = wire_pb2.Return(jid=job.jid, attempt=job.attempt, minion_id=args.id,
                                      success=ok, retcode=retcode, stdout=out, stderr=err,
                                      started_at_ms=started,
                                      ended_at_ms=int(time.time() * 1000),
                                      function=job.function)
                outbox[(job.jid, job.attempt, args.id)] = [ret, 0.0, 2.0]
            elif len(frames) == 2 and frames[0] == b"ACK":
                ack = wire_pb2.ReturnAck()
                ack.ParseFromString(frames[1])
                for k in ack.keys:
                    outbox.pop((k.jid, k.attempt, k.minion_id), None)
                for r in ack.rejected:  # never acceptable: drop, do not resend
                    print("relay rejected return %s/%d: %s %s"
                          % (r.key.jid, r.key.attempt, r.reason, r.detail), flush=True)
                    outbox.pop((r.key.jid, r.key.attempt, r.key.minion_id), None)


if __name__ == "__main__":
    sys.exit(main())
