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
    "${pre[@]}" "$loom" "$@" >"$dir/out" 2>"$dir/err"
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

pre=(env) # what runs loom: env, or env with a changed environment
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
# the plan of one rank of a job (--rank): a rank outside the placement, a bad rank or link, and a
# plan of one rank is not written as JSON (a plan to run)
expect 1 "needs 16 processes .* \(loom plan --rank R compiles the plan of one of its ranks here\)" plan mlp --placement @0-15/cuda:0-7
expect 1 "plan_rank 16 holds no device of the graph's placements \(the first: @0-15/cuda:0-7\)" plan mlp --placement @0-15/cuda:0-7 --rank 16
expect 2 "--rank '-1': expected a rank, 0 to 65535" plan mlp --placement @0-15/cuda:0-7 --rank -1
expect 2 "--rank '5x': expected a rank" plan mlp --placement @0-15/cuda:0-7 --rank 5x
expect 2 "--link: the network links '8x400Gbps': expected \[COUNTx\]RATE" plan mlp --placement @0-15/cuda:0-7 --rank 1 --link 8x400Gbps
expect 2 "--nvlink: the links within a node '0GB/s'" plan mlp --placement @0-15/cuda:0-7 --rank 1 --nvlink 0GB/s
expect 1 "the plan of one rank \(plan_only\) is not written as JSON" plan mlp --placement @0-1/cuda:0-1 --rank 1 --json "$dir/rank.json"
expect 1 "a placement of 65600 devices; a graph's placements hold at most 65536" plan mlp --placement @0-1024/cuda:0-63 --rank 0
expect 0 "" plan mlp --batch 2048 --placement @0-127/cuda:0-7 --rank 5 --link 4x200Gb/s --nvlink 300GB/s
if ! grep -q "^links: between nodes 4 x 25 GB/s = 100 GB/s a node" "$dir/out" || ! grep -q "^rank 5: [0-9]* tasks on its 8 devices; 128 nodes of 8 devices" "$dir/out" ||
    ! grep -q "^all-reduce " "$dir/out"; then
    echo "FAIL: loom plan --rank 5 printed no traffic of rank 5:"
    tail -8 "$dir/out" | sed 's/^/    /'
    fails=$((fails + 1))
fi
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
# --png: dot draws the plan (devices as clusters); without dot on PATH, the refusal says how to get it
rm -f "$dir/plan.png"
pre=(env PATH=/nonexistent)
expect 1 "--png needs Graphviz's dot program" plan mlp --placement cpu:0-1 --png "$dir/plan.png"
pre=(env)
if command -v dot >/dev/null 2>&1; then
    expect 0 "" plan mlp --placement cpu:0-1 --png "$dir/plan's.png"
    if ! grep -q "wrote $dir/plan's.png" "$dir/out" || [ "$(head -c 4 "$dir/plan's.png" | od -An -tx1 | tr -d ' ')" != 89504e47 ]; then
        echo "FAIL: loom plan --png wrote no PNG"
        fails=$((fails + 1))
    fi
    expect 1 "dot could not write $dir/missing/plan.png" plan mlp --placement cpu:0-1 --png "$dir/missing/plan.png"
else
    echo "skipped: loom plan --png (Graphviz's dot is not installed)"
fi
expect 0 "" --help

# loom train, bench and plan of the models: bad usage is status 2 with the reason
expect 2 "loom train: which model" train
expect 2 "unknown model 'frob'" train frob
expect 2 "unknown model 'frob'" bench frob
expect 2 "epochs '0': expected an integer >= 1" train in --epochs 0
expect 2 "lr '-1': expected a number > 0" train in --lr -1
expect 2 "batch 'x8': expected an integer >= 1" train in --batch x8
expect 2 "--epochs needs a value" train in --epochs
expect 2 "--checkpoint is not an option of loom bench" bench in --checkpoint "$dir/ck"
expect 2 "--epochs is not an option of loom plan" plan in --epochs 3
expect 2 "--resume needs --checkpoint DIR" train in --resume
expect 2 "--log-every writes metrics lines: give --metrics FILE" train in --log-every 2
expect 2 "this model takes no --batch" train gcn --batch 8
expect 2 "this model takes no --sampler" train lenet --sampler random
expect 2 "this model takes no --hidden" train convnet --hidden 8
expect 2 "--sampler: .*'nope'" train in --data events:8 --sampler nope
expect 2 "--sampler plan is not offered here" train in --data events:8 --sampler plan
expect 2 "--data 'events:1': expected events:N with N from 2" train in --data events:1
expect 2 "--data 'frob': expected cora .*, synthetic" train gcn --data frob
expect 2 "--data 'frob': expected events" train in --data frob
expect 2 "--placement: .*cpu:3-1" train in --placement cpu:3-1
expect 2 "unknown command 'frob'" help frob
expect 1 "--data .*here.samples.: no such file, nor a directory .*nothing of a TU dataset" train in --data "$dir/nothing/here.samples"
mkdir -p "$dir/empty"
rm -rf "$dir/empty/"*
expect 2 "--resume: $dir/empty holds no checkpoint" train in --data events:8 --hidden 4 --epochs 1 --checkpoint "$dir/empty" --resume
rm -rf "$dir/ck"
expect 0 "" train in --data events:8 --hidden 4 --epochs 1 --checkpoint "$dir/ck" --quiet
expect 2 "holds a checkpoint \\(epoch 1\\): add --resume" train in --data events:8 --hidden 4 --epochs 2 --checkpoint "$dir/ck"
expect 2 "was trained as .*\"hidden\":4.* but this run is .*\"hidden\":5" train in --data events:8 --hidden 5 --epochs 2 --checkpoint "$dir/ck" --resume
expect 1 "--checkpoint: cannot make /dev/null/x: Not a directory" train in --data events:8 --checkpoint /dev/null/x
expect 1 "cannot write $dir/missing/m.jsonl: No such file" train in --data events:8 --metrics "$dir/missing/m.jsonl"
# --plot without gnuplot on PATH: said before anything is trained
pre=(env PATH=/nonexistent)
expect 1 "--plot draws with gnuplot, which is not on PATH" train in --data events:8 --plot "$dir/x.png"
pre=(env)

[ $fails = 0 ] && echo "all cases pass" || echo "$fails cases failed"
[ $fails = 0 ]
