// The licences and notices of the UI's npm packages that end up in ui/dist: the closure of
// package.json's `dependencies` plus the Svelte runtime (svelte is a build tool in
// devDependencies, but its runtime is compiled into the bundle). Writes one text file with each
// package's name, version, licence and its LICENSE/NOTICE files.
// Usage: node scripts/lib/npm-notices.mjs UI_DIR OUT_FILE
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [uiDir, outFile] = process.argv.slice(2);
if (!uiDir || !outFile) {
  console.error('usage: node npm-notices.mjs UI_DIR OUT_FILE');
  process.exit(2);
}
const manifest = JSON.parse(readFileSync(join(uiDir, 'package.json'), 'utf8'));
const pending = [...Object.keys(manifest.dependencies ?? {}), 'svelte'];
const seen = new Map();
while (pending.length > 0) {
  const name = pending.pop();
  if (seen.has(name)) continue;
  const dir = join(uiDir, 'node_modules', name);
  const pkgFile = join(dir, 'package.json');
  if (!existsSync(pkgFile)) {
    console.error(`npm-notices: ${name} is not installed in ${uiDir}/node_modules (run npm ci)`);
    process.exit(1);
  }
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
  seen.set(name, { dir, pkg });
  pending.push(...Object.keys(pkg.dependencies ?? {}));
}

const noticeFile = /^(licen[cs]e|copying|notice)/i;
let text = 'Third-party npm packages bundled into the Vigil desktop UI\n';
for (const name of [...seen.keys()].sort()) {
  const { dir, pkg } = seen.get(name);
  const licence = typeof pkg.license === 'string' ? pkg.license : JSON.stringify(pkg.license);
  text += `\n${'='.repeat(78)}\n${name} ${pkg.version}\nLicence: ${licence ?? 'unspecified'}\n`;
  if (pkg.repository) {
    const repo = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository.url;
    text += `Source: ${repo}\n`;
  }
  const files = readdirSync(dir).filter((f) => noticeFile.test(f)).sort();
  if (files.length === 0) {
    // A few packages declare their licence in package.json only.
    text += `\n(no licence file in the package; its package.json declares ${licence})\n`;
  }
  for (const f of files) {
    text += `\n--- ${f} ---\n${readFileSync(join(dir, f), 'utf8').trimEnd()}\n`;
  }
}
writeFileSync(outFile, text);
console.log(`npm-notices: ${seen.size} packages -> ${outFile}`);
