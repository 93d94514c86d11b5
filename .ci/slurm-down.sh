#!/usr/bin/env bash
# Stop the daemons .ci/slurm-up.sh started (by their pid files / names).
STATE=/var/lib/llbench-slurm
scancel --full -u "$(id -un)" 2>/dev/null   # no job outlives the cluster
sleep 1
pkill -f slurmstepd 2>/dev/null
for f in slurmd slurmctld slurmdbd; do
  [ -f "$STATE/$f.pid" ] && kill "$(cat "$STATE/$f.pid")" 2>/dev/null
done
pkill -x slurmd 2>/dev/null; pkill -x slurmctld 2>/dev/null; pkill -x slurmdbd 2>/dev/null
pkill -x mariadbd 2>/dev/null; pkill -x munged 2>/dev/null
exit 0
