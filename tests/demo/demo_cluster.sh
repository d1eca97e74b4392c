#!/usr/bin/env bash
# The Muster demo cluster on loopback: Redis, jobd, three relays (dc1..dc3),
# real minion processes and fleetsim's virtual minions (a few in dc3 never
# answer), and a Salt datacenter (salt1: a real salt-master 3006.1 with three
# salt-minions, tools/saltlab, and a relay with --bus=salt beside it); then
# jobs shown live with their completeness.
#
# Secure, as docs/SECURITY.md asks of an installation: Redis with ACL users
# (tools/redis_acl: the default user off, jobd and relay-<dc> each logged
# in as itself), jobd signing every dispatch, relays and minions trusting
# only its key, and the bus encrypted with CURVE (minions pin their relay's
# key; relays run --auto_accept, so new minion keys need no jobctl keys
# accept in the demo), and jobd's API on TLS (its self-signed certificate)
# with a bearer token: jobd writes the admin token at its first start
# (--bootstrap_token_file) and jobctl finds both through MUSTER_TLS_CA and
# MUSTER_TOKEN_FILE.
#
# usage: demo_cluster.sh BIN_DIR [--once] [--fleet N] [--insecure] [--no_salt]
#   BIN_DIR holds jobd, relayd, minion, fleetsim, jobctl, redis_acl, saltlab
#   (with saltlab.runfiles).
#   --no_salt   no Salt datacenter
#   --once      stop everything after the jobs (scripted runs, CI)
#   --fleet     virtual minions per datacenter (default 2000)
#   --insecure  no Redis users, signatures, CURVE, TLS or tokens (development only)
# Exit status: 0 when both jobs ended with exactly the expected completeness.
set -uo pipefail

bin=${1:?usage: demo_cluster.sh BIN_DIR [--once] [--fleet N]}
shift
once=0
fleet=2000
insecure=0
salt=1
while [ $# -gt 0 ]; do
  case "$1" in
    --once) once=1 ;;
    --fleet) fleet=$2; shift ;;
    --insecure) insecure=1 ;;
    --no_salt) salt=0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
silent=5           # virtual minions in dc3 that never answer
real_per_dc=2      # real minion processes per datacenter
salt_minions=(salt-1.salt1.example.com salt-2.salt1.example.com salt-3.salt1.example.com)

work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/muster-demo.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  if [ "$once" -eq 1 ] && [ -z "${KEEP_DEMO_DIR:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nothing listens on, below the kernel's ephemeral range
# (an outgoing connection could take a port inside it before our daemon
# binds it), and never one this script handed out before ($work/ports).
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || ephemeral_low=32768
port_first=$((ephemeral_low > 13024 ? ephemeral_low - 12000 : 1024))
port_span=$((ephemeral_low - port_first))
if [ "$port_span" -lt 1000 ]; then port_first=61000; port_span=4000; fi
free_port() {
  local port
  while true; do
    port=$((port_first + (RANDOM * 32768 + RANDOM) % port_span))
    grep -qx "$port" "$work/ports" 2>/dev/null && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port" >>"$work/ports"
      echo "$port"
      return
    fi
  done
}

# Waits until "$@" succeeds, up to $1 seconds.
wait_until() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then return 1; fi
    sleep 0.2
  done
}

start() {  # start NAME CMD...: runs CMD in the background, logging to $work/NAME.log
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}

redis_port=$(free_port)
jobd_port=$(free_port)
http_port=$(free_port)
export MUSTER_SERVER=127.0.0.1:$jobd_port
jobctl="$bin/jobctl"

# Each process's security flags (none but --insecure when insecure).
users="$work/redis-users"
trusted="$work/trusted_keys"
jobd_security=(--insecure)
redis_security=()
relay_security() { echo --insecure; }
minion_security() { echo --insecure; }
if [ "$insecure" -eq 0 ]; then
  mkdir -m 700 "$users"
  "$bin/redis_acl" --dir="$users" --datacenters=dc1,dc2,dc3,salt1 --admin >/dev/null ||
    { echo "redis_acl failed"; exit 1; }
  redis_security=(--aclfile "$users/users.acl")
  # redis-cli reads the password from $REDISCLI_AUTH, not its command line.
  export REDISCLI_AUTH
  REDISCLI_AUTH=$(cat "$users/admin.password")
  # The access policy (docs/SECURITY.md 7.3): admin may do anything, the
  # operator runs test.* and cmd.run on the web fleet only, the viewer reads.
  cat >"$work/policy.json" <<'POLICY'
{
  "groups": {"ops": ["operator"], "viewers": ["viewer"]},
  "rules": [
    {"name": "admins", "who": ["admin"], "rpcs": ["*"]},
    {"name": "ops-web", "who": ["group:ops"],
     "rpcs": ["@read", "SubmitJob", "RetryMissing", "CancelJob"],
     "functions": ["test.*", "cmd.run"],
     "targets": {"type": "grain", "expression": "role:web"}},
    {"name": "read-only", "who": ["group:viewers"], "rpcs": ["@read"]}
  ]
}
POLICY
  jobd_security=(--redis_user=jobd --redis_password_file="$users/jobd.password"
                 --signing_key="$work/jobd_signing.key"
                 --bootstrap_token_file="$work/admin.token" --policy="$work/policy.json")
  # jobctl: jobd's self-signed certificate and the admin token (both written
  # by jobd at its first start).
  export MUSTER_TLS_CA="$work/jobd_tls.crt" MUSTER_TOKEN_FILE="$work/admin.token"
  relay_security() {  # relay_security DC
    printf '%s\n' --redis_user="relay-$1" --redis_password_file="$users/relay-$1.password" \
      --trusted_keys="$trusted" --auto_accept
  }
  minion_security() {  # minion_security DC
    printf '%s\n' --trusted_keys="$trusted" --relay_public_key_file="$work/$1/relay_curve.pub"
  }
fi
if [ "$insecure" -eq 1 ]; then
  # A plaintext jobd: jobctl needs --insecure on every command.
  printf '#!/bin/sh\nexec "%s" --insecure "$@"\n' "$bin/jobctl" >"$work/jobctl"
  chmod +x "$work/jobctl"
  jobctl="$work/jobctl"
fi
echo "== starting the cluster in $work"
if [ "$salt" -eq 1 ]; then
  # Salt takes a while to start: first, so it comes up beside the rest.
  start saltlab "$bin/saltlab" --dir="$work/salt1" \
    --minions="$(IFS=,; echo "${salt_minions[*]}")" --grains=role=web,os=debian,dc=salt1
fi
# A port found free can be taken by another program before redis binds it:
# then redis exits at once, and the demo tries another port (3 tries).
for try in 1 2 3; do
  redis_cli=(redis-cli -p "$redis_port")
  if [ "$insecure" -eq 0 ]; then redis_cli+=(--user admin); fi
  start redis redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" \
    --save "" --appendonly yes --protected-mode no "${redis_security[@]}"
  redis_pid=${pids[-1]}
  if wait_until 20 "${redis_cli[@]}" ping; then break; fi
  kill -TERM "$redis_pid" 2>/dev/null
  wait "$redis_pid" 2>/dev/null
  if [ "$try" -eq 3 ] || ! grep -q "Address already in use" "$work/redis.log"; then
    echo "redis did not start on 127.0.0.1:$redis_port; its log ($work/redis.log) ends:"
    tail -n 20 "$work/redis.log"
    exit 1
  fi
  redis_port=$(free_port)
done
echo "redis      127.0.0.1:$redis_port"

start jobd "$bin/jobd" --listen="127.0.0.1:$jobd_port" --redis="127.0.0.1:$redis_port" \
  --db="$work/muster.db" --http_listen="127.0.0.1:$http_port" "${jobd_security[@]}"
wait_until 20 "$jobctl" relays || { echo "jobd did not start"; cat "$work/jobd.log"; exit 1; }
echo "jobd       127.0.0.1:$jobd_port (SQLite $work/muster.db)"
# The dashboard is HTTPS with jobd's self-signed certificate unless insecure.
dashboard_url="https://127.0.0.1:$http_port"
dashboard_login="log in with the token in $work/admin.token"
if [ "$insecure" -eq 1 ]; then
  dashboard_url="http://127.0.0.1:$http_port"
  dashboard_login="INSECURE: no login"
fi
echo "dashboard  $dashboard_url/  ($dashboard_login; metrics: /metrics)"
if [ "$insecure" -eq 0 ]; then
  # Relays and minions trust jobd's public key (jobd wrote it at its start).
  cp "$work/jobd_signing.key.pub" "$trusted"
fi

for dc in dc1 dc2 dc3; do
  pub=$(free_port)
  ret=$(free_port)
  mkdir -p "$work/$dc"
  mapfile -t relay_flags < <(relay_security "$dc")
  mapfile -t minion_flags < <(minion_security "$dc")
  start "relay-$dc" "$bin/relayd" --datacenter="$dc" --redis="127.0.0.1:$redis_port" \
    --publish_port="$pub" --return_port="$ret" --state_dir="$work/$dc" \
    --heartbeat_interval_ms=1000 "${relay_flags[@]}"
  if [ "$insecure" -eq 0 ]; then
    # Minions pin the relay's CURVE key, which it writes at its first start.
    wait_until 10 test -s "$work/$dc/relay_curve.pub" ||
      { echo "relay-$dc did not start"; cat "$work/relay-$dc.log"; exit 1; }
  fi
  echo "relay-$dc   publish 127.0.0.1:$pub  return 127.0.0.1:$ret"
  for i in $(seq 1 "$real_per_dc"); do
    start "minion-$dc-$i" "$bin/minion" --id="minion-$i.$dc.example.com" \
      --relay_host=127.0.0.1 --publish_port="$pub" --return_port="$ret" \
      --grains="role=web,os=debian,dc=$dc" --heartbeat_interval_ms=2000 \
      --state_dir="$work/$dc/minion-$i" "${minion_flags[@]}"
  done
  fleet_flags=("${minion_flags[@]}")
  if [ "$insecure" -eq 0 ]; then fleet_flags+=(--key_dir="$work/$dc/fleetsim.keys"); fi
  silent_args=()
  if [ "$dc" = dc3 ]; then
    ids=()
    for k in $(seq 1 "$silent"); do ids+=("$(printf 'vm-%05d.dc3.example.com' $((k * 97)))"); done
    silent_args=(--silent_ids="$(IFS=,; echo "${ids[*]}")")
  fi
  start "fleetsim-$dc" "$bin/fleetsim" --count="$fleet" --datacenter="$dc" \
    --id_pattern="vm-{n:05}.{dc}.example.com" --grains="role=web|db|cache,os=debian" \
    --sockets=8 --latency_ms_min=5 --latency_ms_max=400 --failure_rate=0 \
    --relay_host=127.0.0.1 --publish_port="$pub" --return_port="$ret" \
    --heartbeat_interval_ms=2000 "${silent_args[@]}" "${fleet_flags[@]}"
done
total=$(( 3 * (fleet + real_per_dc) ))
if [ "$salt" -eq 1 ]; then
  echo "waiting for the salt-master and its ${#salt_minions[@]} salt-minions (tools/saltlab)..."
  if ! wait_until 240 grep -q "^saltlab ready" "$work/saltlab.log"; then
    echo "Salt did not start; its log ($work/saltlab.log) ends:"; tail -n 30 "$work/saltlab.log"
    exit 1
  fi
  master_config=$(grep -o 'master_config=[^ ]*' "$work/saltlab.log" | head -1 | cut -d= -f2)
  mkdir -p "$work/salt1/relay"
  mapfile -t relay_flags < <(relay_security salt1)
  start relay-salt1 "$bin/relayd" --datacenter=salt1 --bus=salt \
    --salt_master_config="$master_config" --redis="127.0.0.1:$redis_port" \
    --state_dir="$work/salt1/relay" --heartbeat_interval_ms=1000 \
    --salt_catch_up_interval_ms=2000 "${relay_flags[@]}"
  echo "relay-salt1 bus=salt beside the salt-master $master_config"
  total=$(( total + ${#salt_minions[@]} ))
fi
echo "waiting for $total minions to report through their relays..."
count_minions() {
  "$jobctl" minions --json --limit=1 | grep -o '"total":"\?[0-9]*' | grep -o '[0-9]*$'
}
if ! wait_until 60 bash -c "[ \"\$('$jobctl' minions --json --limit=1 | grep -o '\"total\":\"\\?[0-9]*' | grep -o '[0-9]*\$')\" = $total ]"; then
  echo "only $(count_minions) of $total minions reported"; exit 1
fi
"$jobctl" relays
if [ "$insecure" -eq 0 ]; then
  key_id=$(grep -o 'signing dispatches with key [0-9a-f]*' "$work/jobd.log" | awk '{print $5}')
  fingerprints=""
  for dc in dc1 dc2 dc3; do
    fp=$(grep -o 'fingerprint [0-9a-f]*' "$work/relay-$dc.log" | head -1 | awk '{print $2}')
    fingerprints+=" $dc=${fp:-?}"
  done
  tls_fp=$(grep -o 'SHA-256 [0-9A-F:]*' "$work/jobd.log" | head -1 | awk '{print $2}')
  echo "security: ON (jobd signing key ${key_id:-?}; relay CURVE keys$fingerprints;" \
    "Redis ACL users, default user off; API on TLS, certificate SHA-256 ${tls_fp:0:23}...," \
    "admin token in $MUSTER_TOKEN_FILE)"
else
  echo "security: OFF (--insecure: no signatures, no CURVE, no Redis users, plaintext API" \
    "without tokens; development only)"
fi
echo

status=0
echo "== job 1: test.ping to every minion (10 s timeout; $silent in dc3 never answer)"
"$jobctl" submit '*' test.ping --timeout=10s --wait
code=$?
jid1=$("$jobctl" list --json --limit=1 | grep -o '"jid":"[0-9]*"' | head -1 | grep -o '[0-9]\{20\}')
summary1=$("$jobctl" status "$jid1" --json)
if [ "$code" -ne 3 ] || ! grep -q "\"missing\":\"$silent\"" <<<"$summary1"; then
  echo "DEMO CHECK FAILED: job 1 should end INCOMPLETE with exactly $silent missing (exit $code)"
  status=1
fi
echo
echo "== job 2: cmd.run on a compound target (real minions and the web fleet in dc1)"
"$jobctl" submit --type=compound 'minion-* or (G@role:web and *.dc1.example.com)' \
  cmd.run 'echo hello from $(hostname) && uname -sr' --timeout=20s --wait
code=$?
if [ "$code" -ne 0 ]; then
  echo "DEMO CHECK FAILED: job 2 should end COMPLETE with every return ok (exit $code)"
  status=1
fi
jid2=$("$jobctl" list --json --limit=1 | grep -o '"jid":"[0-9]*"' | head -1 | grep -o '[0-9]\{20\}')
echo
echo "== the output of two minions of job 2"
"$jobctl" returns "$jid2" --limit=2
echo
if [ "$salt" -eq 1 ]; then
  echo "== job 3: the Salt datacenter: Salt's own grains.item through the salt-master"
  "$jobctl" submit 'salt-*' grains.item os saltversion --timeout=30s --wait
  code=$?
  if [ "$code" -ne 0 ]; then
    echo "DEMO CHECK FAILED: job 3 should end COMPLETE on the ${#salt_minions[@]} salt-minions (exit $code)"
    status=1
  fi
  jid3=$("$jobctl" list --json --limit=1 | grep -o '"jid":"[0-9]*"' | head -1 | grep -o '[0-9]\{20\}')
  "$jobctl" returns "$jid3" --limit=2
  echo
fi
if [ "$insecure" -eq 0 ]; then
  echo "== access control: tokens for 'operator' and 'viewer' (policy $work/policy.json)"
  (umask 077
   "$bin/jobd" token create --db="$work/muster.db" --principal=operator \
     --description="demo operator" >"$work/operator.token" 2>/dev/null &&
   "$bin/jobd" token create --db="$work/muster.db" --principal=viewer \
     --description="demo viewer" >"$work/viewer.token" 2>/dev/null) ||
    { echo "DEMO CHECK FAILED: jobd token create"; status=1; }
  echo "\$ MUSTER_TOKEN_FILE=viewer.token jobctl submit '*' test.ping"
  MUSTER_TOKEN_FILE="$work/viewer.token" "$jobctl" submit '*' test.ping
  code=$?
  if [ "$code" -ne 8 ]; then
    echo "DEMO CHECK FAILED: the viewer's submit should be refused (exit 8, got $code)"
    status=1
  fi
  echo "\$ MUSTER_TOKEN_FILE=operator.token jobctl submit '*' cmd.run uptime"
  MUSTER_TOKEN_FILE="$work/operator.token" "$jobctl" submit '*' cmd.run uptime
  code=$?
  if [ "$code" -ne 8 ]; then
    echo "DEMO CHECK FAILED: the operator's job on every minion should be refused (exit 8, got $code)"
    status=1
  fi
  echo "\$ MUSTER_TOKEN_FILE=operator.token jobctl submit --type=compound 'G@role:web and *.dc1.example.com' test.ping --wait"
  MUSTER_TOKEN_FILE="$work/operator.token" "$jobctl" submit --type=compound \
    'G@role:web and *.dc1.example.com' test.ping --timeout=20s --wait >/dev/null
  code=$?
  if [ "$code" -ne 0 ]; then
    echo "DEMO CHECK FAILED: the operator's job on the web fleet should run (exit $code)"
    status=1
  else
    echo "(allowed: every minion it asks has role=web; COMPLETE)"
  fi
  echo "\$ jobctl audit --limit=4"
  "$jobctl" audit --limit=4
  echo
fi
if [ "$status" -eq 0 ]; then echo "demo: the jobs show the expected completeness and the policy held"; fi

if [ "$once" -eq 1 ]; then exit "$status"; fi
cat <<MSG

The cluster keeps running. In another terminal:
  export MUSTER_SERVER=$MUSTER_SERVER${MUSTER_TLS_CA:+ MUSTER_TLS_CA=$MUSTER_TLS_CA MUSTER_TOKEN_FILE=$MUSTER_TOKEN_FILE}
  $jobctl whoami
  $jobctl audit
  MUSTER_TOKEN_FILE=$work/viewer.token $jobctl whoami
  $jobctl status $jid1 --all
  $jobctl retry $jid1 --wait
  $jobctl submit --type=grain 'role:db' cmd.run 'uptime' --wait
  $jobctl submit 'salt-*' cmd.run 'uptime' --wait        (the Salt datacenter)
  $jobctl minions 'vm-0000*'
  $jobctl relays
Dashboard: $dashboard_url/#/job/$jid1
Logs and data: $work
Press Ctrl-C to stop everything.
MSG
while true; do sleep 3600; done
