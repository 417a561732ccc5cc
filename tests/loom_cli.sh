#!/bin/bash
# The loom command's failure modes: each case checks the exit status and what is printed.
#   tests/loom_cli.sh LOOM_BINARY SCRATCH_DIR
# In a sanitizer build a leak or an error report changes the exit status, so every error path here
# is also a leak check.
set -u
loom=$1
dir=$2
mkdir -p "$dir"
fails=0

# expect STATUS PATTERN ARGS...: PATTERN is an extended regex stderr must match, or "" for an empty stderr
expect() {
    local want=$1 pattern=$2
    shift 2
    "$loom" "$@" >"$dir/out" 2>"$dir/err"
    local got=$?
    local said=1
    if [ -z "$pattern" ]; then [ ! -s "$dir/err" ] || said=0; else grep -Eq -- "$pattern" "$dir/err" || said=0; fi
    if [ "$got" != "$want" ] || [ $said = 0 ]; then
        echo "FAIL: loom $*: status $got (want $want), stderr:"
        sed 's/^/    /' "$dir/err" | head -20
        echo "    (wanted it to match: $pattern)"
        fails=$((fails + 1))
    else
        echo "ok: loom $* -> $got"
    fi
}

usage='^usage: loom'
expect 2 "$usage" # no command
expect 2 "unknown command 'frob'" frob
expect 2 "unknown argument 'extra'" info extra
expect 2 "which model" plan
expect 2 "--placement needs a value" plan gcn --placement
expect 2 "$usage" plan gcn --placement
expect 2 "--dot needs a value" plan gcn --dot
expect 2 "unknown option '--bogus'" plan gcn --bogus x
expect 2 "$usage" plan gcn --bogus x
expect 2 "unknown argument 'extra'" plan gcn extra
expect 2 "unknown model 'nope'" plan nope
expect 2 "placement 'cpu:3-1'" plan gcn --placement cpu:3-1
expect 1 "cannot write $dir/missing/plan.dot: No such file" plan mlp --placement cpu:0-1 --dot "$dir/missing/plan.dot"
if [ -w /dev/full ]; then
    # the full disk shows at the close: it must be reported, not "wrote"
    expect 1 "cannot write /dev/full: No space left" plan mlp --placement cpu:0-1 --dot /dev/full
    if grep -q wrote "$dir/out"; then
        echo "FAIL: loom plan --dot /dev/full printed 'wrote'"
        fails=$((fails + 1))
    fi
    "$loom" ops >/dev/full 2>"$dir/err"
    got=$?
    if [ $got != 1 ] || ! grep -q "cannot write standard output" "$dir/err"; then
        echo "FAIL: loom ops >/dev/full: status $got"
        fails=$((fails + 1))
    fi
fi

# one device: the dot is written too (one cluster, no boxing)
rm -f "$dir/one.dot"
expect 0 "" plan gcn --placement cpu:0 --dot "$dir/one.dot"
if ! grep -q "wrote $dir/one.dot" "$dir/out" || ! grep -q "cluster_dev0" "$dir/one.dot" ||
    grep -q "cluster_dev1\|color=red" "$dir/one.dot"; then
    echo "FAIL: loom plan gcn --placement cpu:0 --dot: no one-device graph written"
    fails=$((fails + 1))
fi
expect 0 "" --help

[ $fails = 0 ] && echo "all cases pass" || echo "$fails cases failed"
[ $fails = 0 ]
