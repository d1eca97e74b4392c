"""A compatible Muster minion in Python, written from docs/PROTOCOL.md alone.

It exists to prove that the protocol document is enough to implement a
minion in another language: it subscribes to the relay's publish port,
matches every kind of target (target_matcher.py, checked against the
conformance corpus), acknowledges each dispatch with a receipt (and
handles dispatches the relay re-sends on the DEALER), runs test.ping /
test.echo, sends returns on a DEALER socket until the relay acknowledges
them, and heartbeats its grains.

usage: python_minion.py --id ID --publish PORT --return PORT [--grains k=v,...]
"""

import argparse
import sys
import time

import zmq

from proto import wire_pb2
from target_matcher import matches


def run(job):
    """(success, retcode, stdout, stderr); output is bytes (Return.stdout is `bytes`)."""
    if job.function == "test.ping":
        return True, 0, b"true", b""
    if job.function == "test.echo":
        return True, 0, " ".join(job.args).encode(), b""
    return False, 1, b"", ("unknown function %s" % job.function).encode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--publish", type=int, required=True)
    parser.add_argument("--return", dest="ret", type=int, required=True)
    parser.add_argument("--grains", default="")
    parser.add_argument("--heartbeat_ms", type=int, default=500)
    args = parser.parse_args()
    grains = dict(kv.split("=", 1) for kv in args.grains.split(",") if kv)

    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    sub.connect("tcp://%s:%d" % (args.host, args.publish))
    sub.setsockopt(zmq.SUBSCRIBE, b"*")
    sub.setsockopt(zmq.SUBSCRIBE, ("@%s@" % args.id).encode())
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect("tcp://%s:%d" % (args.host, args.ret))

    done = set()        # (jid, attempt) already run
    outbox = {}         # (jid, attempt, minion) -> [Return, next_send_time, interval]
    next_heartbeat = 0.0
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    poller.register(dealer, zmq.POLLIN)
    print("python minion %s ready" % args.id, flush=True)
    while True:
        now = time.time()
        if now >= next_heartbeat:
            batch = wire_pb2.HeartbeatBatch()
            hb = batch.heartbeats.add()
            hb.minion_id = args.id
            hb.grains.update(grains)
            hb.sent_at_ms = int(now * 1000)
            hb.interval_ms = args.heartbeat_ms
            hb.version = "python-minion"
            dealer.send_multipart([b"HB", batch.SerializeToString()])
            next_heartbeat = now + args.heartbeat_ms / 1000.0
        due = [entry for entry in outbox.values() if entry[1] <= now]
        if due:
            batch = wire_pb2.ReturnBatch()
            for entry in due:
                batch.returns.add().CopyFrom(entry[0])
                entry[2] = min(entry[2] * 2, 30.0)
                entry[1] = now + entry[2]
            dealer.send_multipart([b"RET", batch.SerializeToString()])
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
                    dealer.send_multipart([b"RCV", receipts.SerializeToString()])
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
