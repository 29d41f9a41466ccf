#!/usr/bin/env bash
# What an image's size is made of: the image size as the engine reports it, the
# operating system part, and each Python distribution in /opt/syncd with its .pyc files.
# Sizes are file contents (apparent sizes), in MB of 10^6 bytes, as image sizes are.
#
#   bash scripts/image-sizes.sh localhost/syncd:smoke-slim      # podman (or ENGINE=docker)
set -euo pipefail
IMAGE="${1:?usage: image-sizes.sh IMAGE}"
ENGINE="${ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}"

flags=()
if [[ "$ENGINE" == podman ]]; then  # as in image-smoke.sh
    command -v runc >/dev/null 2>&1 && flags+=(--runtime runc)
    flags+=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --no-healthcheck)
fi
size=$("$ENGINE" image inspect "$IMAGE" --format '{{.Size}}')
awk -v s="$size" -v e="$ENGINE" 'BEGIN { printf "%-34s %8.1f MB\n", "image (" e " image inspect)", s / 1e6 }'
"$ENGINE" run --rm "${flags[@]}" --read-only --network none --entrypoint python3 "$IMAGE" -c '
import importlib.metadata as md, importlib.util, os, sys

def tree(top, skip=()):
    total = 0
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total

mb = lambda n: f"{n / 1e6:8.1f} MB"
venv = tree("/opt/syncd")
system = tree("/", skip={"/proc", "/sys", "/dev", "/opt/syncd"})
print("operating system and Python".ljust(34), mb(system))
print("/opt/syncd (the venv)".ljust(34), mb(venv))
rows = []
for dist in md.distributions(path=[p for p in sys.path if p.startswith("/opt/syncd")]):
    total = 0
    for f in dist.files or ():
        path = str(dist.locate_file(f))
        try:
            total += os.lstat(path).st_size
        except OSError:
            continue
        if path.endswith(".py"):
            pyc = importlib.util.cache_from_source(path)
            if os.path.exists(pyc):
                total += os.lstat(pyc).st_size
    rows.append((total, dist.metadata["Name"], dist.version))
for total, name, version in sorted(rows, reverse=True):
    print(("  " + name + " " + version).ljust(34), mb(total))
'
