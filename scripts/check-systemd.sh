#!/usr/bin/env bash
# Checks deploy/modeld.service with systemd-analyze: `verify` must pass and
# `security --offline=true` must score an exposure of 2.5 or lower.
# Usage: scripts/check-systemd.sh [path-to-modeld-binary]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found (apt-get install systemd)" >&2; exit 3; }
bin="${1:-$(command -v bun || echo /bin/true)}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# verify checks that ExecStart exists; point it at a real executable, change nothing else.
sed "s#/usr/local/bin/modeld#$bin#" deploy/modeld.service > "$dir/modeld.service"
systemd-analyze verify "$dir/modeld.service"
score=$(systemd-analyze security --offline=true "$dir/modeld.service" | sed -n 's/.*Overall exposure level for modeld.service: \([0-9.]*\).*/\1/p')
echo "exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.5) }' || { echo "exposure $score is above 2.5" >&2; exit 1; }
