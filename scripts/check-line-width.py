#!/usr/bin/env python3
"""Fails when a Rust line (of a tracked or new file) is wider than rustfmt's max_width.

rustfmt leaves a line alone when it cannot fit it (a long string, a closure it gives up on) and
`cargo fmt --check` still passes; the stable toolchain has no `error_on_line_overflow`. This check
closes that gap: every tracked .rs file, every line, counted in characters.
"""
import pathlib
import re
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
config = (root / "rustfmt.toml").read_text()
match = re.search(r"^max_width\s*=\s*(\d+)", config, re.MULTILINE)
width = int(match.group(1)) if match else 100
listed = ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.rs"]
files = [f for f in subprocess.run(listed, cwd=root, check=True, capture_output=True, text=True).stdout.split() if (root / f).exists()]
over = []
for name in files:
    for number, line in enumerate((root / name).read_text(encoding="utf-8").splitlines(), 1):
        if len(line) > width:
            over.append(f"{name}:{number}: {len(line)} characters")
if over:
    print(f"{len(over)} lines wider than rustfmt's max_width ({width}):")
    print("\n".join(over))
    sys.exit(1)
print(f"{len(files)} Rust files, no line wider than {width}")
