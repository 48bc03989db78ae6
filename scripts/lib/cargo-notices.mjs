// The licences and notices of the Rust crates compiled into the shipped binaries: the closure
// of the normal (not dev, not build-script) dependencies of the named workspace packages, from
// `cargo metadata`, each with its declared licence and the licence/notice files it ships.
// Usage: cargo metadata --format-version 1 --locked --filter-platform TRIPLE \
//          | node scripts/lib/cargo-notices.mjs OUT_FILE PACKAGE...
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const [outFile, ...roots] = process.argv.slice(2);
if (!outFile || roots.length === 0) {
  console.error('usage: cargo metadata ... | node cargo-notices.mjs OUT_FILE PACKAGE...');
  process.exit(2);
}
const meta = JSON.parse(readFileSync(0, 'utf8'));
const packages = new Map(meta.packages.map((p) => [p.id, p]));
const nodes = new Map(meta.resolve.nodes.map((n) => [n.id, n]));
const workspace = new Set(meta.workspace_members);

const pending = roots.map((name) => {
  const found = meta.packages.find((p) => p.name === name && workspace.has(p.id));
  if (!found) {
    console.error(`cargo-notices: no workspace package named ${name}`);
    process.exit(1);
  }
  return found.id;
});
const seen = new Set();
while (pending.length > 0) {
  const id = pending.pop();
  if (seen.has(id)) continue;
  seen.add(id);
  for (const dep of nodes.get(id)?.deps ?? []) {
    if (dep.dep_kinds.some((k) => k.kind === null)) pending.push(dep.pkg);
  }
}

const noticeFile = /^(licen[cs]e|copying|notice|copyright|unlicense)/i;
const crates = [...seen]
  .filter((id) => !workspace.has(id))
  .map((id) => packages.get(id))
  .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
let text = `Third-party Rust crates compiled into ${roots.join(', ')}\n`;
let withoutFile = 0;
for (const p of crates) {
  const dir = dirname(p.manifest_path);
  text += `\n${'='.repeat(78)}\n${p.name} ${p.version}\nLicence: ${p.license ?? 'see the file below'}\n`;
  if (p.repository) text += `Source: ${p.repository}\n`;
  // Licence files, and the files of a LICENSES/ folder (REUSE layout).
  const files = readdirSync(dir)
    .filter((f) => noticeFile.test(f))
    .flatMap((f) =>
      statSync(join(dir, f)).isDirectory()
        ? readdirSync(join(dir, f)).map((g) => join(f, g))
        : [f],
    )
    .sort();
  if (p.license_file && !files.includes(p.license_file)) files.push(p.license_file);
  if (files.length === 0) {
    withoutFile += 1;
    text += `\n(no licence file in the crate; its Cargo.toml declares ${p.license})\n`;
  }
  for (const f of files) {
    text += `\n--- ${f} ---\n${readFileSync(join(dir, f), 'utf8').trimEnd()}\n`;
  }
}
writeFileSync(outFile, text);
console.log(
  `cargo-notices: ${crates.length} crates (${withoutFile} declare their licence in Cargo.toml only) -> ${outFile}`,
);
