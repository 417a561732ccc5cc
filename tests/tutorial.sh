#!/bin/bash
# docs/tutorial.md, followed as a reader would: its C program (the ```c block) saved as gnn.c, and
# its shell commands (the ```sh blocks, in order, as one script) run in a scratch folder with HOME
# there, so that the install goes to $HOME/loom and the program is built against it. The block
# that installs packages and builds Loom is left out: BUILD_DIR is that build (linked as ./build).
# Then what the tutorial says of the output is checked: a resumed run and a straight one print the
# same losses, the three placements agree to 1e-3, and the PNG of the curves is written. Without
# gnuplot, --plot is taken out of the command (said on the output) and the rest still runs.
#   tests/tutorial.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -u
build=$1
src=$2
work=$3
md=$src/docs/tutorial.md
rm -rf "$work"
mkdir -p "$work/home"
ln -s "$build" "$work/build"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

awk '/^```c$/ { inb = 1; next } /^```$/ && inb { exit } inb' "$md" >"$work/gnn.c"
awk '/^```sh$/ { inb = 1; buf = ""; next }
     /^```$/ && inb { inb = 0; if (buf !~ /install-deps\.sh|cmake -S/) { printf "%s", buf; n++ } else skipped++; next }
     inb { buf = buf $0 "\n" }
     END { printf "# %d blocks, %d left out\n", n, skipped }' "$md" >"$work/tutorial-commands.sh"
grep -q "^int main" "$work/gnn.c" || fail "no C program with a main found in $md"
blocks=$(sed -n 's/^# \([0-9]*\) blocks.*/\1/p' "$work/tutorial-commands.sh")
[ "${blocks:-0}" -ge 6 ] || fail "only ${blocks:-0} shell blocks found in $md"
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "gnuplot is not installed: --plot taken out of the tutorial's commands"
    sed -i 's/ --plot [^ ]*//' "$work/tutorial-commands.sh"
fi
[ $fails = 0 ] || exit 1

echo "running $blocks blocks of $md in $work:"
(cd "$work" && HOME="$work/home" bash -e -x tutorial-commands.sh) >"$work/log" 2>&1
status=$?
sed 's/^/    /' "$work/log" | grep -v '^    ++* ' | tail -60
[ $status = 0 ] || fail "the tutorial's commands stopped with status $status (the log: $work/log)"

# what the text says of the output
straight=$(grep -c "^epoch 4 on cpu:0: loss" "$work/log")
distinct=$(grep "^epoch 4 on cpu:0: " "$work/log" | sort -u | wc -l)
[ "$straight" -ge 3 ] && [ "$distinct" = 1 ] ||
    fail "epoch 4 on cpu:0 printed $straight times ($distinct distinct lines): resumed, straight and placed runs differ"
grep -q "^resumed from gnn.safetensors after epoch 2" "$work/log" || fail "the resumed run did not say so"
awk '/^epoch 4 on cpu:0.*loss/ { for (i = 1; i <= NF; i++) if ($i == "loss") v[n++] = $(i + 1) + 0 }
     END { for (i = 1; i < n; i++) if (v[i] - v[0] > 1e-3 || v[0] - v[i] > 1e-3) exit 1; exit n < 5 }' "$work/log" ||
    fail "the placements' losses after epoch 4 do not agree to 1e-3"
grep -q "resumed after epoch 1" "$work/log" || fail "loom train --resume did not resume"
if command -v gnuplot >/dev/null 2>&1; then
    [ -s "$work/lenet.png" ] || fail "no lenet.png"
fi
[ $fails = 0 ] && echo "the tutorial works" || echo "$fails checks failed"
[ $fails = 0 ]
