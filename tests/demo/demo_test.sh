#!/usr/bin/env bash
# Runs the README's demo cluster non-interactively with the binaries Bazel
# built, and fails unless the jobs show the expected completeness and the
# access policy refuses and allows what it should.
set -uo pipefail
root="${TEST_SRCDIR}/muster"
bin="${TEST_TMPDIR}/bin"
mkdir -p "$bin"
for b in server/jobd relay/relayd minion/minion minion/fleetsim client/jobctl \
  tools/redis_acl/redis_acl tools/saltlab/saltlab; do
  ln -sf "$root/$b" "$bin/$(basename "$b")"
done
out="${TEST_TMPDIR}/demo.out"
KEEP_DEMO_DIR=1 "$root/tests/demo/demo_cluster.sh" "$bin" --once --fleet 500 2>&1 | tee "$out"
code=${PIPESTATUS[0]}
grep -q "demo: the jobs show the expected completeness and the policy held" "$out" || code=1
grep -q "^security: ON" "$out" || code=1
exit "$code"
