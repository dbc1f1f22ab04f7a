"""Summarise a py-spy raw (collapsed stacks) profile: where the server's CPU time goes.

``py-spy record --format raw -o prof.txt -p PID`` writes one line per distinct stack, ``frame;frame;... count``
(outermost frame first). This prints the share of samples by leaf function (self time), by function anywhere
on the stack (inclusive time, counted once per stack) and by the first project frame under the event loop.

Run: ``python bench/profile_summary.py prof.txt [--top 25] [--match kommutator/]``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def parse(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        raw = raw.strip()
        if not raw:
            continue
        stack, _, count = raw.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        stacks.append((stack.split(";"), n))
    return stacks


def func_of(frame: str, *, with_line: bool = False) -> str:
    m = FRAME.match(frame)
    if not m:
        return frame
    if with_line and m["line"]:
        return f"{m['func']} ({m['file']}:{m['line']})"
    return f"{m['func']} ({m['file']})"


def package_of(frame: str) -> str:
    """``sqlalchemy`` for ``expect (sqlalchemy/sql/coercions.py:405)``; the event loop's C code is ``(loop)``."""
    m = FRAME.match(frame)
    if not m or not m["file"]:
        return "(native / unknown)"
    if m["func"] == "Runner.run":
        return "(event loop, C code: uvloop, httptools, sockets)"
    head = m["file"].split("/", 1)[0]
    if "/" not in m["file"]:
        return "stdlib"
    return head if head not in ("asyncio", "concurrent", "json", "logging", "re", "email") else "stdlib"


def summarise(stacks: list[tuple[list[str], int]], *, top: int, match: str) -> str:
    total = sum(n for _, n in stacks) or 1
    leaf: Counter[str] = Counter()
    leaf_line: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    project_leaf: Counter[str] = Counter()
    package: Counter[str] = Counter()
    for frames, n in stacks:
        package[package_of(frames[-1])] += n
        leaf[func_of(frames[-1])] += n
        leaf_line[func_of(frames[-1], with_line=True)] += n
        for f in {func_of(fr) for fr in frames}:
            inclusive[f] += n
        # the deepest project frame: which line of our code the time is spent under
        ours = [fr for fr in frames if match in fr]
        if ours:
            project_leaf[func_of(ours[-1], with_line=True)] += n

    def table(title: str, counter: Counter[str]) -> list[str]:
        lines = [f"\n{title}", f"{'share':>7} {'samples':>8}  function"]
        for name, n in counter.most_common(top):
            lines.append(f"{100 * n / total:6.1f}% {n:8d}  {name}")
        return lines

    out = [f"{total} samples"]
    out += table("Self time by package (leaf frame's file):", package)
    out += table("Self time (leaf frame):", leaf)
    out += table("Self time by line:", leaf_line)
    out += table("Inclusive time (function anywhere on the stack):", inclusive)
    out += table(f"Deepest frame matching {match!r} (the line of our code the time is spent under):", project_leaf)
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--match", default="kommutator/")
    args = p.parse_args()
    print(summarise(parse(args.profile), top=args.top, match=args.match))


if __name__ == "__main__":
    main()
