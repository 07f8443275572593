#!/usr/bin/env python3
"""The declared MSRV (workspace `rust-version`) against what the build really needs.

This machine has one toolchain, so the MSRV cannot be built here. What is checked instead:
- every crate the `pinwheel` library depends on (all features, normal dependencies) declares
  a `rust-version` no newer than ours (cargo's resolver v3 prefers such versions; this fails
  if it could not find one);
- std APIs newer than the MSRV are refused by clippy's `incompatible_msrv` lint, which the
  clippy step runs with -D warnings.
Not checked: language features stabilised after the MSRV.
"""
import json
import subprocess
import sys


def version(v):
    return tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])


meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--all-features"]))
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
members = [i for i in meta["workspace_members"]]
declared = {packages[i]["rust_version"] for i in members}
if len(declared) != 1:
    sys.exit(f"msrv: workspace members declare different rust-versions: {sorted(declared)}")
msrv = declared.pop()
root = next(i for i in members if packages[i]["name"] == "pinwheel")
seen, stack = set(), [root]
while stack:
    i = stack.pop()
    if i in seen:
        continue
    seen.add(i)
    for d in nodes[i]["deps"]:
        if any(k["kind"] is None for k in d["dep_kinds"]):
            stack.append(d["pkg"])
newer = sorted(
    (packages[i]["name"], packages[i]["version"], packages[i]["rust_version"])
    for i in seen
    if packages[i].get("rust_version") and version(packages[i]["rust_version"]) > version(msrv)
)
if newer:
    for name, v, rv in newer:
        print(f"msrv: {name} {v} needs Rust {rv}, above pinwheel's rust-version {msrv}")
    sys.exit("msrv: raise the workspace rust-version, or pin those crates to versions that fit")
print(f"msrv: {len(seen)} crates in pinwheel's dependency tree (all features) fit rust-version {msrv}")
