#!/usr/bin/env bash
# Bring up a single-node Slurm (slurmctld + slurmd) with accounting (slurmdbd + MariaDB) on this
# machine, without systemd, for the submitit executor tests. Idempotent: a running cluster is
# reused. Needs root and Debian's packages: slurmctld slurmd slurm-client munge slurmdbd
# mariadb-server (.ci/run installs them). Prints the cluster name on success.
set -euo pipefail
CLUSTER=llbench
STATE=/var/lib/llbench-slurm
mkdir -p "$STATE" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /run/mysqld /etc/slurm
chown munge:munge /run/munge 2>/dev/null || true
chown mysql:mysql /run/mysqld 2>/dev/null || true

if scontrol ping 2>/dev/null | grep -q "UP"; then
  if sinfo -h -o %T 2>/dev/null | grep -Eq "idle|mixed|alloc"; then echo "$CLUSTER"; exit 0; fi
fi

# munge
[ -f /etc/munge/munge.key ] || mungekey --create
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/sh munge -c "munged"

# MariaDB for accounting
if ! pgrep -x mariadbd >/dev/null; then
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null 2>&1
  (mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock >"$STATE/mariadb.log" 2>&1 &)
  for _ in $(seq 100); do mariadb -e "select 1" >/dev/null 2>&1 && break; sleep 0.1; done
fi
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

HOST=$(hostname -s)
NODE=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //; s/ UpTime=.*//')
MEM=$(( $(free -m | awk '/Mem:/{print $7}') * 8 / 10 ))
NODE=$(echo "$NODE" | sed "s/RealMemory=[0-9]*/RealMemory=$MEM/")
cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$STATE/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
CONF
chmod 600 /etc/slurm/slurmdbd.conf
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
SchedulerParameters=batch_sched_delay=0
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
NodeName=$HOST NodeAddr=127.0.0.1 $NODE State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

pgrep -x slurmdbd >/dev/null || slurmdbd
for _ in $(seq 100); do sacctmgr -n show cluster >/dev/null 2>&1 && break; sleep 0.1; done
sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
pgrep -x slurmctld >/dev/null || slurmctld
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.1; done
pgrep -x slurmd >/dev/null || slurmd
# jobs left from an earlier session (the spool keeps them) are cancelled: tests start clean
scancel --full -u "$(id -un)" 2>/dev/null || true
for _ in $(seq 300); do sinfo -h -o %T 2>/dev/null | grep -Eq "idle|mixed" && break; sleep 0.1; done
sinfo -h -o %T | grep -Eq "idle|mixed" || { echo "slurm did not come up; see /var/log/slurm" >&2; sinfo >&2; exit 1; }
echo "$CLUSTER"
