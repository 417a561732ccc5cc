#!/usr/bin/env python3
"""Every Markdown file of the repository names only files and directories the repository has.

    tests/links.py SOURCE_DIR
    tests/links.py --self-test    the checker on a planted tree of good and missing paths

Checks, in each .md file under SOURCE_DIR (hidden folders and build trees aside), outside fenced
code blocks:
  - relative link targets, [text](path#anchor) and [label]: path, against the document's folder;
  - paths in backquotes (`docs/foo.md`, `examples/x.c`, `bench/peers/`, `tests/gpu_ops_*.c`), against
    the repository root or the document's folder. A backquoted word is taken for a path when it has
    a '/' and either begins with an entry of the root or of the document's folder, or ends in a
    source file's extension; words that name no file of the tree by design are left alone: URLs,
    absolute and home paths, variables ($LOOM_DATA/...), placements (cuda:0-1, @0/cpu:0),
    and the build tree (build/...), which the repository does not hold.
Prints "DOCUMENT:LINE: missing PATH" for each, and exits 1 if any is missing.
"""
import glob
import os
import re
import sys

SOURCE_EXT = (".c", ".h", ".cu", ".md", ".py", ".sh", ".def", ".txt", ".cmake", ".in", ".supp")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
CODE = re.compile(r"(`+)(.+?)\1")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_files(root):
    for folder, dirs, files in os.walk(root):
        # hidden folders (.git) and build trees (anything CMake configured) hold no documents of ours
        dirs[:] = sorted(d for d in dirs
                         if not d.startswith(".") and not os.path.exists(os.path.join(folder, d, "CMakeCache.txt")))
        for f in sorted(files):
            if f.endswith(".md"):
                yield os.path.join(folder, f)


def exists(base, path):
    full = os.path.normpath(os.path.join(base, path))
    if any(c in path for c in "*?["):
        return bool(glob.glob(full))
    if path.endswith("/"):
        return os.path.isdir(full)
    return os.path.exists(full)


def is_external(target):
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) is not None or target.startswith("#")


def code_path(word, root, here):
    """The path a backquoted word names, or None when it is not taken for one."""
    word = re.sub(r":\d+(-\d+)?$", "", word)  # file.c:120
    if "/" not in word or re.search(r"\s", word) or "=" in word:
        return None
    if word[0] in "/~$<@." or "://" in word or re.match(r"^[a-z]+:\d", word):
        return None
    first = word.split("/", 1)[0]
    if first == "build" or first.startswith("build-") or first.isupper():
        return None  # the build tree; placeholders such as OUTDIR/
    if os.path.exists(os.path.join(root, first)) or os.path.exists(os.path.join(here, first)):
        return word
    if word.endswith(SOURCE_EXT):
        return word
    return None


def check(path, root):
    here = os.path.dirname(path)
    missing = []
    fenced = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if FENCE.match(line):
                fenced = not fenced
                continue
            if fenced:
                continue
            targets = [m.group(1) for m in LINK.finditer(CODE.sub("", line))]
            ref = REF_DEF.match(line)
            if ref:
                targets.append(ref.group(1))
            for t in targets:
                if is_external(t):
                    continue
                t = t.split("#", 1)[0].split("?", 1)[0]
                if t and not exists(here, t):
                    missing.append((n, t))
            for m in CODE.finditer(line):
                p = code_path(m.group(2).strip(), root, here)
                if p and not exists(root, p) and not exists(here, p):
                    missing.append((n, p))
    return missing


PLANTED = {
    "README.md": "See [the guide](docs/guide.md), [a gone page](docs/gone.md#part) and `docs/`.\n"
                 "`examples/x.c`, `examples/nothing.c:12`, `tests/t_*.c`, `tests/u_*.c`, `lost/file.c`,\n"
                 "`build/bench/gcn`, `$DATA/a.npz`, `cuda:0/s1`, `OUTDIR/x.txt`, https://example.org/a/b.md.\n"
                 "```sh\nls docs/absent.md `docs/absent.md`\n```\n"
                 "[label]: docs/missing.md\n",
    "docs/guide.md": "Back to [the top](../README.md), [here](#title), `peers/p.py` and `peers/q.py`, [x](nowhere/)\n",
    "docs/peers/p.py": "",
    "examples/x.c": "",
    "tests/t_1.c": "",
}
PLANTED_MISSING = ["README.md:1: missing docs/gone.md", "README.md:2: missing examples/nothing.c",
                   "README.md:2: missing tests/u_*.c", "README.md:2: missing lost/file.c",
                   "README.md:7: missing docs/missing.md", "docs/guide.md:1: missing peers/q.py",
                   "docs/guide.md:1: missing nowhere/"]


def self_test():
    """The checker on a planted tree: it must report exactly the planted missing paths."""
    import contextlib
    import io
    import tempfile
    with tempfile.TemporaryDirectory() as root:
        for name, text in PLANTED.items():
            os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
            with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                f.write(text)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = run(root)
    got = [l for l in out.getvalue().splitlines() if "missing" in l and not l.startswith("links.py")]
    if status != 1 or sorted(got) != sorted(PLANTED_MISSING):
        print("links.py --self-test: status %d, reported:\n  %s\nwanted:\n  %s" %
              (status, "\n  ".join(got), "\n  ".join(PLANTED_MISSING)))
        return 1
    print(f"links.py --self-test: the {len(got)} planted missing paths found, nothing else")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 2:
        print("usage: links.py SOURCE_DIR | links.py --self-test", file=sys.stderr)
        return 2
    return run(os.path.abspath(sys.argv[1]))


def run(root):
    docs = bad = 0
    for doc in markdown_files(root):
        docs += 1
        for n, p in check(doc, root):
            print(f"{os.path.relpath(doc, root)}:{n}: missing {p}")
            bad += 1
    if docs == 0:
        print(f"links.py: no Markdown file under {root}", file=sys.stderr)
        return 1
    print(f"links.py: {docs} documents, {bad} missing path{'s' if bad != 1 else ''}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
