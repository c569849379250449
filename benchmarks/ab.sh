#!/usr/bin/env bash
# Before/after, side by side in one run: the same benchmark from another checkout (BASE, with
# its own .venv) and from this one, alternately, ROUNDS times, so that the machine's load
# affects both alike. Prints each run's table under a header naming the checkout.
#
#   git worktree add /tmp/base <commit> && (cd /tmp/base && python3 -m venv .venv &&
#       .venv/bin/pip install -q -e '.[dev]')
#   benchmarks/ab.sh /tmp/base 2 bench_import.py --rows 300000
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 BASE_CHECKOUT ROUNDS SCRIPT [ARGS...]" >&2; exit 2; }
base=$(cd "$1" && pwd); rounds=$2; script=$3; shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
for round in $(seq 1 "$rounds"); do
  for tree in "$base" "$here"; do
    rev=$(git -C "$tree" rev-parse --short HEAD)
    echo "=== round $round: $(basename "$tree") @ $rev: $script $*"
    (cd "$tree" && .venv/bin/python "benchmarks/$script" "$@")
  done
done
