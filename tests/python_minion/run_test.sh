#!/usr/bin/env bash
# Runs a Python test (default: the protocol conformance test) with Debian's
# python3 (which has the zmq, redis and protobuf modules); the generated
# proto modules are in runfiles.
set -euo pipefail
export PYTHONPATH="${TEST_SRCDIR}/muster"
exec /usr/bin/python3 "${TEST_SRCDIR}/muster/${1:-tests/python_minion/python_minion_test.py}" -v
