#!/usr/bin/env bash
# Builds dist/guestagent-<version>-linux-x64.tar.gz: the agent as JavaScript,
# its production dependencies, the Node 24 runtime from node_modules, the
# systemd unit and the cloud-init templates. A guest needs neither npm nor a
# network to run it: unpack into /opt/guestagent and start bin/guestagent.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node_modules/.bin/node -p "require('./package.json').version")
name="guestagent-${version}-linux-x64"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
mkdir -p "$root/bin" "$root/runtime"

node_modules/.bin/node scripts/build.mjs
cp -r dist/src dist/datastores dist/native dist/package.json "$root/"
cp package.json package-lock.json "$root/"
# Production dependencies only, without the `node` package (the runtime is copied once, below).
(cd "$root" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error && rm -rf node_modules/node node_modules/.bin/node)
# dist/package.json says "type": "module"; keep the full one for npm's metadata but ESM for the code.
node_modules/.bin/node -e "const f='$root/package.json';const p=require(f);p.type='module';require('fs').writeFileSync(f,JSON.stringify(p,null,2))"
cp "$(readlink -f node_modules/.bin/node)" "$root/runtime/node"
cp -r systemd cloudinit "$root/"
cp README.md "$root/"
cat > "$root/bin/guestagent" <<'SH'
#!/bin/sh
# The bundled Node 24, with a small young generation (see scripts/build.mjs).
here=$(dirname "$(readlink -f "$0")")
exec "$here/../runtime/node" --max-semi-space-size=1 "$here/../src/cli-entry.js" "$@"
SH
chmod 755 "$root/bin/guestagent"
cat > "$root/src/cli-entry.js" <<'JS'
// libuv's pool compresses backups (one block per thread): cores + 2, as dist/bin/guestagent.js does.
const { availableParallelism } = await import('node:os');
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() + 2));
const { main } = await import('./main.js');
process.exit(await main(process.argv.slice(2), process.env));
JS
mkdir -p dist
tar -C "$stage" -czf "dist/$name.tar.gz" "$name"
echo "dist/$name.tar.gz $(du -h "dist/$name.tar.gz" | cut -f1) (unpacked $(du -sh "$root" | cut -f1))"
