#!/bin/bash
# loom train, bench and plan on short runs (a few seconds in all), on the CPU:
#   - the interaction network on 40 generated events: its metrics are JSON lines, one per epoch
#     (epoch, step, loss, accuracy, samples/s, seconds) and one per --log-every steps;
#   - 2 epochs straight, and 1 epoch then --resume for the second, end on the same loss bits, and
#     the checkpoint directory keeps the last epoch's file only; steps run in chunks (--log-every 1)
#     end there too;
#   - SIGTERM (as Ctrl-C) stops a run with status 130, keeping its last checkpoint;
#   - loom bench prints one JSON line; loom plan plans every model; --help of every command;
#   - with `plot`: --plot writes a PNG (status 77, skipped, where gnuplot is not installed).
#   tests/loom_train.sh LOOM_BINARY SCRATCH_DIR [plot]
set -u
loom=$1
dir=$2
mkdir -p "$dir"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() { # run NAME ARGS...: loom ARGS, its output in $dir/NAME.out; a failure counted
    local name=$1
    shift
    if "$loom" "$@" >"$dir/$name.out" 2>&1; then
        echo "ok: loom $*"
    else
        fail "loom $* (status $?):"
        sed 's/^/    /' "$dir/$name.out" | tail -20
    fi
}
small=(train in --data events:40 --hidden 8 --seed 3)

if [ "${3:-}" = plot ]; then
    if ! command -v gnuplot >/dev/null 2>&1; then
        echo "SKIPPED: gnuplot is not installed (scripts/install-deps.sh installs it)"
        exit 77
    fi
    rm -f "$dir/curves.png"
    run plot "${small[@]}" --epochs 2 --plot "$dir/curves.png"
    # a PNG: its signature, 89 50 4e 47 0d 0a 1a 0a
    if [ "$(head -c 8 "$dir/curves.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" != 89504e470d0a1a0a ]; then
        fail "--plot wrote no PNG at $dir/curves.png"
    fi
    grep -q "wrote $dir/curves.png" "$dir/plot.out" || fail "--plot did not say it wrote the PNG"
    [ $fails = 0 ] && echo "all cases pass"
    [ $fails = 0 ]
    exit
fi

# metrics: JSON lines with the fields each kind of line must have
rm -rf "$dir/ck"
run straight "${small[@]}" --epochs 2 --metrics "$dir/straight.jsonl"
run chunked "${small[@]}" --epochs 2 --metrics "$dir/chunked.jsonl" --log-every 1
run first "${small[@]}" --epochs 1 --metrics "$dir/resumed.jsonl" --checkpoint "$dir/ck"
run second "${small[@]}" --epochs 2 --metrics "$dir/resumed.jsonl" --checkpoint "$dir/ck" --resume
grep -q "resumed after epoch 1" "$dir/second.out" || fail "the resumed run did not say where it went on from"
if command -v python3 >/dev/null 2>&1; then
    python3 - "$dir" <<'EOF' || fails=$((fails + 1))
import json, sys
d = sys.argv[1]
def lines(name):
    return [json.loads(l) for l in open(f"{d}/{name}.jsonl")]
bad = []
for name in ("straight", "chunked", "resumed"):
    rows = lines(name)
    epochs = [r for r in rows if r["type"] == "epoch"]
    if [r["epoch"] for r in epochs] != [1, 2]:
        bad.append(f"{name}: epoch lines {[r['epoch'] for r in epochs]}, wanted [1, 2]")
    for r in epochs:
        for k in ("epoch", "step", "loss", "accuracy", "samples_per_s", "seconds"):
            if not isinstance(r.get(k), (int, float)):
                bad.append(f"{name}: epoch line without a number '{k}': {r}")
        if not 0 <= r.get("accuracy", -1) <= 1 or not r.get("samples_per_s", 0) > 0:
            bad.append(f"{name}: accuracy or samples/s out of range: {r}")
steps = [r for r in lines("chunked") if r["type"] == "steps"]
epoch_steps = [r["step"] for r in lines("chunked") if r["type"] == "epoch"]
if [r["step"] for r in steps] != list(range(1, epoch_steps[-1] + 1)):
    bad.append(f"--log-every 1: step lines {[r['step'] for r in steps]}, wanted 1 .. {epoch_steps[-1]}")
last = {n: [r for r in lines(n) if r["type"] == "epoch"][-1]["loss"] for n in ("straight", "chunked", "resumed")}
if last["resumed"] != last["straight"]:
    bad.append(f"1 epoch + --resume ends at loss {last['resumed']!r}, 2 epochs straight at {last['straight']!r}")
if last["chunked"] != last["straight"]:
    bad.append(f"steps in chunks end at loss {last['chunked']!r}, in one run at {last['straight']!r}")
for b in bad:
    print("FAIL:", b)
print("ok: metrics, resume and chunks:", last["straight"]) if not bad else None
sys.exit(1 if bad else 0)
EOF
else
    # without python: the last epoch lines' losses as printed (17 digits), compared as text
    l1=$(grep '"type":"epoch","epoch":2' "$dir/straight.jsonl" | sed 's/.*"loss":\([^,]*\),.*/\1/')
    l2=$(grep '"type":"epoch","epoch":2' "$dir/resumed.jsonl" | sed 's/.*"loss":\([^,]*\),.*/\1/')
    [ -n "$l1" ] && [ "$l1" = "$l2" ] || fail "1 epoch + --resume ends at loss '$l2', 2 epochs straight at '$l1'"
fi
[ "$(ls "$dir/ck" | sort | tr '\n' ' ')" = "epoch-2.safetensors run.json " ] ||
    fail "the checkpoint directory holds $(ls "$dir/ck" | tr '\n' ' '), wanted epoch-2.safetensors and run.json"
run again "${small[@]}" --epochs 2 --checkpoint "$dir/ck" --resume
grep -q "nothing to do" "$dir/again.out" || fail "resuming a finished run did not say there was nothing to do"

# SIGTERM (as Ctrl-C) once epoch 1's checkpoint is written: status 130, the checkpoint kept and named
rm -rf "$dir/ckstop"
"$loom" "${small[@]}" --epochs 100000 --checkpoint "$dir/ckstop" >"$dir/stop.out" 2>&1 &
pid=$!
for _ in $(seq 400); do
    [ -e "$dir/ckstop/epoch-1.safetensors" ] && break
    sleep 0.05
done
kill -TERM $pid
wait $pid
got=$?
if [ $got != 130 ] || ! grep -q "interrupted in epoch .*; the last checkpoint is $dir/ckstop/epoch-[0-9]*.safetensors" "$dir/stop.out"; then
    fail "loom train stopped by SIGTERM: status $got (want 130), output:"
    sed 's/^/    /' "$dir/stop.out" | tail -5
else
    echo "ok: loom train stopped by SIGTERM -> 130"
fi
ls "$dir/ckstop"/epoch-*.safetensors >/dev/null 2>&1 || fail "the stopped run left no checkpoint"

# GIN on a TU dataset (graph classification, scored on its own graphs): 8 graphs, triangles
# (label 1) and paths (label 0) of 3 nodes
mkdir -p "$dir/tu"
: >"$dir/tu/T_A.txt"
: >"$dir/tu/T_graph_indicator.txt"
: >"$dir/tu/T_graph_labels.txt"
for k in 0 1 2 3 4 5 6 7; do
    a=$((3 * k + 1)) b=$((3 * k + 2)) c=$((3 * k + 3))
    printf '%d, %d\n%d, %d\n%d, %d\n%d, %d\n' $a $b $b $a $b $c $c $b >>"$dir/tu/T_A.txt"
    [ $((k % 2)) = 1 ] && printf '%d, %d\n%d, %d\n' $a $c $c $a >>"$dir/tu/T_A.txt"
    printf '%d\n%d\n%d\n' $((k + 1)) $((k + 1)) $((k + 1)) >>"$dir/tu/T_graph_indicator.txt"
    echo $((k % 2)) >>"$dir/tu/T_graph_labels.txt"
done
run gin train gin --data "$dir/tu/T" --batch 4 --epochs 2 --hidden 8
grep -Eq "^epoch 2/2: loss [0-9.]+, accuracy (0|1)\.[0-9]+, [0-9]+ graphs/s" "$dir/gin.out" || fail "gin on a TU dataset: $(tail -1 "$dir/gin.out")"

# bench: one JSON line
run bench bench in --data events:40 --hidden 8 --steps 3 --warmup 1
grep -Eq '^\{"bench":"loom","model":"in",.*"steps":3,.*"samples_per_s":[0-9.e+]+.*\}$' "$dir/bench.out" ||
    fail "loom bench printed no JSON line: $(cat "$dir/bench.out")"

# plan of every model on two devices (shapes only; the events are generated)
for m in gcn in gin mlp lenet convnet resnet20; do
    run "plan-$m" plan "$m" --placement cpu:0-1
    grep -q "^model $m on cpu:0-1: .* on 2 devices" "$dir/plan-$m.out" || fail "loom plan $m printed no plan"
done

# --help of every command: status 0, its usage and examples on standard output
for c in train bench plan calibrate info ops; do
    run "help-$c" "$c" --help
    grep -q "^loom $c" "$dir/help-$c.out" && grep -q "^examples:" "$dir/help-$c.out" || fail "loom $c --help has no usage or examples"
    run "help2-$c" help "$c"
done

[ $fails = 0 ] && echo "all cases pass" || echo "$fails cases failed"
[ $fails = 0 ]
