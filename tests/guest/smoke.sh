#!/bin/sh
# Runs in the guest from the shared checkout:
#   cargo xtask qemu --share . -- ./tests/guest/smoke.sh [STATUS]
# The checkout is mounted at its own path and the shell starts in it; the exit status
# (STATUS, default 0) comes back to the host.
set -e
test -f Cargo.toml
echo "smoke: $(uname -m) $(uname -r) in $(pwd)"
exit "${1:-0}"
