"""Checks that the binaries deploy/Dockerfile copies are the service binaries the workspace builds, and that
every binary a rendered manifest runs is one the image holds.

    python3 scripts/check-image-binaries.py [rendered.yaml ...]
"""

import json
import re
import subprocess
import sys

metadata = json.loads(subprocess.run(
    ["cargo", "metadata", "--no-deps", "--format-version", "1"], check=True, capture_output=True, text=True).stdout)
# The image holds the services (packages under services/); `trialops` (crates/cli) is for local use.
built = {
    t["name"]
    for p in metadata["packages"]
    if "/services/" in p["manifest_path"].replace("\\", "/")
    for t in p["targets"]
    if "bin" in t["kind"]
}
dockerfile = open("deploy/Dockerfile").read()
copied = set(re.findall(r"target/release/([A-Za-z0-9_-]+)\s", dockerfile))
compiled = set(re.findall(r"--bin ([A-Za-z0-9_-]+)", dockerfile))
installed = set(re.findall(r"/usr/local/bin/([A-Za-z0-9_-]+)", dockerfile))

problems = []
if copied != built:
    problems.append("Dockerfile copies %s but the workspace builds %s" % (sorted(copied), sorted(built)))
if compiled != copied:
    problems.append("Dockerfile builds %s but copies %s" % (sorted(compiled), sorted(copied)))
for path in sys.argv[1:]:
    for binary in set(re.findall(r"/usr/local/bin/([A-Za-z0-9_-]+)", open(path).read())):
        if binary not in installed:
            problems.append("%s runs %s, which the image does not hold" % (path, binary))
if problems:
    print("\n".join(problems))
    sys.exit(1)
print("image binaries: %s (match the workspace)" % ", ".join(sorted(copied)))
