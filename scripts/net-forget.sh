#!/usr/bin/env bash
# Takes a throwaway store's networks off the host (bench runs, experiments): for each network
# record under ROOT/meta/networks, its gateway address leaves its bridge (the bridge stays:
# wharf0 is shared by every store's default network), and its firewall rules — wharf's
# nftables table, the legacy chains, the ACCEPT rules in docker's FORWARD chains — are
# deleted by their owner comment. Other stores' networks are not touched.
#
#   scripts/net-forget.sh ROOT
set -uo pipefail
root=${1:?usage: net-forget.sh ROOT}
shopt -s nullglob
for rec in "$root"/meta/networks/*.json; do
  read -r id bridge gw prefix < <(python3 -c '
import json, sys
n = json.load(open(sys.argv[1]))
print(n["id"], n["bridge"], n["gateway"], n["subnet"].split("/")[1])' "$rec") || continue
  ip addr del "$gw/$prefix" dev "$bridge" 2>/dev/null
  [ "$bridge" = wharf0 ] || ip link del "$bridge" 2>/dev/null
  c="wharf:net:$id"
  nft -a list table ip wharf 2>/dev/null | awk -v c="\"$c\"" '
    /^\tchain / {chain=$2}
    index($0, c) {print chain, $NF}' | while read -r chain handle; do
      nft delete rule ip wharf "$chain" handle "$handle"
  done
  for ipt in iptables-nft iptables-legacy; do
    command -v "$ipt" >/dev/null || continue
    for t in filter nat; do
      "$ipt" -w -t "$t" -S 2>/dev/null | grep -F -- "$c" | sed 's/^-A /-D /' |
        while read -r rule; do eval "$ipt -w -t $t $rule"; done
    done
  done
done
