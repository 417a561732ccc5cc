# shellcheck shell=bash disable=SC2034,SC2154
# Sourced by bench/cpu.sh and bench/gpu.sh, which set `out` (OUTDIR), `root` (the checkout) and
# `failed=0` first: progress notes, one benchmark run into OUTDIR, and where the data is.

# A line of progress on stderr.
note() { echo "== $*" >&2; }

# run NAME COMMAND...: appends the command's JSON lines to OUTDIR/NAME.jsonl (stderr to NAME.log);
# a failure is noted and sets failed=1, and the next run goes on, so one broken case still leaves
# the others' figures. With run_detail=1 the note also gives the exit status and the log's last
# lines.
run() {
    local name=$1
    shift
    note "$name: $*"
    "$@" >>"$out/$name.jsonl" 2>>"$out/$name.log"
    local rc=$?
    if [ $rc -ne 0 ]; then
        if [ "${run_detail:-0}" = 1 ]; then
            note "$name failed (exit $rc): see $out/$name.log"
            tail -n 5 "$out/$name.log" >&2
        else
            note "$name failed: see $out/$name.log"
        fi
        failed=1
    fi
}

# LOOM_DATA, when it is unset: a shared/data folder inside or beside the checkout that holds
# cora.npz, where there is one.
find_data() {
    if [ -z "${LOOM_DATA:-}" ]; then
        for d in "$root/shared/data" "$root/../shared/data"; do
            [ -f "$d/cora.npz" ] && export LOOM_DATA=$d && break
        done
    fi
}
