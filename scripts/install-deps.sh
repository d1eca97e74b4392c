#!/usr/bin/env bash
# Installs the Debian packages Muster builds, tests and runs with, skipping
# those already present. Sourced by scripts/test and scripts/demo.
set -euo pipefail

MUSTER_PACKAGES=(
  bazel-bootstrap build-essential pkg-config
  clang  # the lock analysis only (scripts/check-thread-safety); gcc builds Muster
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libre2-dev cppzmq-dev libzmq3-dev libhiredis-dev libsqlite3-dev
  libgtest-dev libgmock-dev redis-server
  redis-sentinel  # Sentinel-managed Redis (docs/OPERATIONS.md "Redis Sentinel"; tests)
  libspdlog-dev libfmt-dev nlohmann-json3-dev libcpp-httplib-dev
  prometheus-cpp-dev libsodium-dev
  libjemalloc-dev  # the allocator of jobd, relayd, minion and fleetsim (docs/PERFORMANCE.md)
  libssl-dev  # jobd makes and checks its TLS certificate (server/auth/tls_files)
  python3 python3-zmq python3-redis python3-protobuf
  python3-nacl  # the Python test minion checks dispatch signatures (tests/python_minion)
  chromium fonts-dejavu-core  # headless browser test of the dashboard
  # Salt 3006.1 (vendored in third_party/salt) runs from source on Debian's
  # python3 for the Salt datacenter tests (tests/support/salt_cluster); its
  # Tornado is vendored, looseversion is a shim there, python3-redis (above)
  # serves Salt's redis returner.
  python3-msgpack python3-yaml python3-jinja2 python3-markupsafe
  python3-requests python3-distro python3-psutil python3-cryptography
  python3-pycryptodome python3-packaging python3-jmespath python3-setproctitle
)

muster_install_deps() {
  local missing=()
  local pkg
  for pkg in "${MUSTER_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  echo "installing: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >/dev/null
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  # The redis-server package starts a system instance on 6379, and
  # redis-sentinel one on 26379 (via systemd, where there is one); Muster's
  # tests and demo start their own on free ports, so both are left alone.
}
