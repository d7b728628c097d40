import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The extension's identity in package.json: a name that says what it does, its icon (a
 * 128x128 PNG, as the Marketplace and VS Code's extension and walkthrough views need), and
 * a walkthrough that names the task. Plain Node: reads files.
 */
const root = path.resolve(__dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  displayName: string;
  icon?: string;
  contributes: { walkthroughs: Array<{ title: string; description: string; icon?: string }> };
};

/** Width and height from a PNG's signature and IHDR chunk (the first chunk, by the PNG spec). */
function pngSize(file: string): { width: number; height: number } {
  const b = fs.readFileSync(file);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(b.length > 24 && b.subarray(0, 8).equals(signature), `${file} is not a PNG`);
  assert.equal(b.toString('latin1', 12, 16), 'IHDR', `${file} has no IHDR chunk first`);
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

describe('the extension\'s name, icon and walkthrough', () => {
  it('package.json names an icon that exists and is a 128x128 PNG, packaged in the .vsix', () => {
    assert.ok(pkg.icon, 'package.json has no "icon"');
    const file = path.join(root, pkg.icon);
    assert.ok(fs.existsSync(file), `${pkg.icon} does not exist`);
    assert.deepEqual(pngSize(file), { width: 128, height: 128 });
    // .vscodeignore ignores everything but what it re-includes: the icon must be re-included.
    const ignore = fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8').split('\n').map((l) => l.trim());
    assert.ok(ignore.includes(`!${pkg.icon}`), `.vscodeignore does not re-include ${pkg.icon}`);
  });

  it('the icon\'s drawing is in the repository next to it (scripts/render-icon.ts renders it)', () => {
    assert.ok(pkg.icon);
    const svg = path.join(root, pkg.icon.replace(/\.png$/, '.svg'));
    assert.ok(fs.existsSync(svg), `${path.relative(root, svg)} (the icon's source) is missing`);
    assert.match(fs.readFileSync(svg, 'utf8'), /<svg[^>]*viewBox="0 0 128 128"/);
  });

  it('the display name says what the extension does; the walkthrough names the task and shows the icon', () => {
    assert.equal(pkg.displayName, 'Delta Lake → Postgres Sync');
    // The id, and so every command and setting, stays as it was.
    assert.equal(pkg.name, 'delta-neon-sync');
    const [walkthrough] = pkg.contributes.walkthroughs;
    assert.ok(walkthrough);
    assert.equal(walkthrough.title, 'Sync a Delta table to Postgres');
    assert.match(walkthrough.description, /preview its inserts, updates and deletes, then sync/);
    assert.equal(walkthrough.icon, pkg.icon);
  });
});
