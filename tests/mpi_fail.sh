#!/bin/bash
# mpi_fail.sh MPIEXEC NP PROGRAM CASE: runs PROGRAM CASE on NP ranks (tests/mpi_fail.c) and passes
# when every rank that must report does ("ok:" lines): all NP, or NP - 1 when rank 1 is killed.
set -u
mpiexec=$1 np=$2 prog=$3 case=$4
want=$np
[ "$case" = kill ] || [ "$case" = kill_yield ] && want=$((np - 1))
# fetch: the wait for a rank that is not at the collective is three times this
[ "$case" = fetch ] && export LOOM_NET_TIMEOUT=3
# a killed rank must not take the others down before they report: mpirun keeps them running
out=$("$mpiexec" -np "$np" --oversubscribe --mca orte_abort_on_non_zero_status 0 "$prog" "$case" 2>&1)
echo "$out"
got=$(grep -c '^ok: ' <<<"$out")
if [ "$got" -ne "$want" ]; then
    echo "mpi_fail.sh: $case on $np ranks: $got ranks reported the failure as they must, $want should have" >&2
    exit 1
fi
# a step is applied whole on every rank or on none: the ranks that report say the same count (a
# rank stopped at once, killed, may leave one partly applied)
if [ "$case" != kill ] && [ "$case" != kill_yield ]; then
    counts=$(grep '^ok: ' <<<"$out" | grep -o 'steps [0-9]*$' | sort -u | wc -l)
    if [ "$counts" -gt 1 ]; then
        echo "mpi_fail.sh: $case on $np ranks: the ranks applied different numbers of steps" >&2
        exit 1
    fi
fi
