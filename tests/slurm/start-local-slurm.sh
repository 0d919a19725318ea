#!/usr/bin/env bash
# start-local-slurm.sh: install (if missing), configure and start a single-node Slurm
# cluster on this machine for tests: munged + MariaDB + slurmdbd + slurmctld + slurmd.
# It is meant for CI as root on Debian/Ubuntu and does not need systemd. You can run it
# again safely: a daemon that is already running (according to our pid files) is not restarted.
# Stop the cluster with stop-local-slurm.sh.
# mdreg: tests/slurm/conftest.py runs it before the Slurm tests (and .ci/run before pytest);
# copied from the team's tested reference scripts (../shared/slurm) so that the project
# carries its own.
# Env: LOCAL_SLURM_DIR       state/logs/pid files (default /tmp/local-slurm)
#      LOCAL_SLURM_FAKE_GPUS number of fake GPUs to advertise through GRES (default 0 = none)
#      LOCAL_SLURM_TIMEOUT   seconds to wait for each daemon (default 60)
#      LOCAL_SLURM_DB_PORT   private MariaDB port on 127.0.0.1 (default 3307)
set -euo pipefail
D=${LOCAL_SLURM_DIR:-/tmp/local-slurm}
GPUS=${LOCAL_SLURM_FAKE_GPUS:-0}
T=${LOCAL_SLURM_TIMEOUT:-60}
DB_PORT=${LOCAL_SLURM_DB_PORT:-3307}
RUN=$D/run LOG=$D/log DB=$D/mysql
say() { echo "start-local-slurm: $*"; }
die() { echo "start-local-slurm: ERROR: $*" >&2; exit 1; }
# running PIDFILE NAME: true if PIDFILE holds the pid of a live (not zombie) process called NAME
running() {
  local p; p=$(cat "$1" 2>/dev/null) || return 1
  [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null
}
# launch NAME PIDFILE CMD...: run CMD, which starts daemon NAME, unless NAME is already running
launch() {
  local name=$1 pf=$2; shift 2
  if running "$pf" "$name"; then say "$name is already running"; return 0; fi
  rm -f "$pf"
  "$@" || die "$name failed to start"
}
# wait_for NAME PIDFILE LOGFILE CMD...: poll CMD (5 s max per try) until it succeeds.
# Fail at once if daemon NAME has died, or after $T s; show the end of LOGFILE.
wait_for() {
  local name=$1 pf=$2 logf=$3 end=$((SECONDS + T)) why; shift 3
  until timeout 5 "$@" >/dev/null 2>&1; do
    why=""
    if [ -s "$pf" ] && ! running "$pf" "$name"; then why="$name died"; fi
    if [ $SECONDS -ge $end ]; then why="$name is not ready after ${T}s"; fi
    if [ -n "$why" ]; then
      [ -r "$logf" ] && tail -n 15 "$logf" >&2
      die "$why (see $logf)"
    fi
    sleep 0.2
  done
}

[ "$(id -u)" = 0 ] || die "run me as root"

# 1. Packages. A temporary policy-rc.d stops apt from starting the daemons with their default configs.
missing=0
for b in slurmctld slurmd slurmdbd sbatch munged mariadbd mariadb-install-db; do
  command -v "$b" >/dev/null || missing=1
done
if [ $missing = 1 ]; then
  say "installing slurm, munge and mariadb packages with apt-get"
  own_policy=0 rc=0
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own_policy=1; }
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurmdbd slurm-client munge mariadb-server; } >/tmp/local-slurm-apt.log 2>&1 || rc=$?
  if [ $own_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ $rc = 0 ] || { tail -n 20 /tmp/local-slurm-apt.log >&2; die "apt-get install failed (rc=$rc)"; }
fi
mkdir -p "$RUN/munge" "$LOG" "$D/state/ctld" "$D/state/d" /run/munge
chown munge:munge "$RUN/munge" /run/munge

# 2. Configuration files. Node hardware comes from `slurmd -C`; the node's name is `hostname -s`.
NODE=$(hostname -s)
HW=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')   # CPUs=.. Boards=.. ... RealMemory=..
GRES_NODE="" GRES_TYPES=""
echo "# no GRES (LOCAL_SLURM_FAKE_GPUS=0)" >"$D/gres.conf.new"
if [ "$GPUS" -gt 0 ]; then   # fake GPUs: files that point to /dev/null, one per GPU
  mkdir -p "$D/fakegpu"
  for ((i = 0; i < GPUS; i++)); do ln -sfn /dev/null "$D/fakegpu/nvidia$i"; done
  GRES_NODE="Gres=gpu:$GPUS" GRES_TYPES="GresTypes=gpu"
  echo "NodeName=$NODE Name=gpu File=$D/fakegpu/nvidia[0-$((GPUS - 1))]" >"$D/gres.conf.new"
fi
cat >"$D/slurm.conf.new" <<EOF
ClusterName=local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
# a requeued job may start again 10 s after the requeue (the default is 120 s)
AuthInfo=cred_expire=10
MpiDefault=none
# no cgroups: works in containers; memory is not a consumable (CR_Core) so --mem is not enforced
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobCompType=jobcomp/none
# schedule at once and often; SIGKILL 5 s after SIGTERM (submitit ignores SIGTERM)
SchedulerParameters=batch_sched_delay=0,sched_interval=2,sched_min_interval=0
KillWait=5
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$D/state/ctld
SlurmdSpoolDir=$D/state/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
$GRES_TYPES
NodeName=$NODE NodeAddr=127.0.0.1 $HW $GRES_NODE State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$D/slurmdbd.conf.new" <<EOF
AuthType=auth/munge
DbdAddr=127.0.0.1
DbdHost=localhost
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm-local
StorageLoc=slurm_acct_db
EOF
# If the cluster runs with other settings, stop it first (it is started again below).
if ! cmp -s "$D/slurm.conf.new" /etc/slurm/slurm.conf || ! cmp -s "$D/gres.conf.new" /etc/slurm/gres.conf ||
   ! cmp -s "$D/slurmdbd.conf.new" /etc/slurm/slurmdbd.conf; then
  if running "$RUN/slurmctld.pid" slurmctld || running "$RUN/slurmd.pid" slurmd; then
    say "configuration changed: restarting the cluster"
    bash "$(dirname "$0")/stop-local-slurm.sh"
  fi
  install -m 644 "$D/slurm.conf.new" /etc/slurm/slurm.conf
  install -m 644 "$D/gres.conf.new" /etc/slurm/gres.conf
  install -m 600 "$D/slurmdbd.conf.new" /etc/slurm/slurmdbd.conf
fi

# 3. munged, run as the munge user (as root it rejects the munge-owned paths). A munged that works is reused.
if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "munged is already running"
else
  [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key && chown munge:munge /etc/munge/munge.key; }
  launch munged "$RUN/munge/munged.pid" runuser -u munge -- munged --pid-file="$RUN/munge/munged.pid"
  wait_for munged "$RUN/munge/munged.pid" /var/log/munge/munged.log bash -c 'munge -n </dev/null | unmunge'
fi

# 4. A private MariaDB for accounting (sacct), on 127.0.0.1:$DB_PORT and a socket in $DB.
detach() { setsid "$@" </dev/null >/dev/null 2>&1 & }
if ! running "$DB/mariadbd.pid" mariadbd; then
  if [ ! -d "$DB/mysql" ]; then
    mkdir -p "$DB" && chown mysql:mysql "$DB"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DB" --auth-root-authentication-method=socket \
      --skip-test-db >"$LOG/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $LOG/mariadb-install.log)"
  fi
  launch mariadbd "$DB/mariadbd.pid" detach mariadbd --no-defaults --user=mysql --datadir="$DB" \
    --socket="$DB/mysqld.sock" --pid-file="$DB/mariadbd.pid" --log-error="$DB/mariadbd.err" \
    --bind-address=127.0.0.1 --port="$DB_PORT" --skip-name-resolve --innodb-buffer-pool-size=64M
  wait_for mariadbd "$DB/mariadbd.pid" "$DB/mariadbd.err" mariadb-admin --no-defaults --socket="$DB/mysqld.sock" ping
  mariadb --no-defaults --socket="$DB/mysqld.sock" -u root -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1'
    IDENTIFIED BY 'slurm-local'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || die "cannot create the DB user"
fi

# 5. Slurm daemons (they fork and write their own pid files).
launch slurmdbd "$RUN/slurmdbd.pid" slurmdbd
wait_for slurmdbd "$RUN/slurmdbd.pid" "$LOG/slurmdbd.log" sacctmgr -n list cluster
launch slurmctld "$RUN/slurmctld.pid" slurmctld
wait_for slurmctld "$RUN/slurmctld.pid" "$LOG/slurmctld.log" sinfo -h
launch slurmd "$RUN/slurmd.pid" slurmd

# 6. Wait for the node to be usable; a node left DOWN/DRAINED by an earlier run is resumed.
end=$((SECONDS + T))
while [ $SECONDS -lt $end ]; do
  st=$(timeout 5 sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
  case $st in
    idle | mix | alloc) say "node $NODE is $st"; sinfo; exit 0 ;;
    inval) break ;;
    down | drain | drng) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
  esac
  running "$RUN/slurmd.pid" slurmd || [ ! -s "$RUN/slurmd.pid" ] || break   # slurmd died
  sleep 0.2
done
tail -n 15 "$LOG/slurmd.log" >&2
timeout 5 scontrol show node "$NODE" >&2 || true
die "node $NODE is '${st:-unknown}', not idle, after $((SECONDS - end + T))s (see $LOG/slurmd.log and $LOG/slurmctld.log)"
