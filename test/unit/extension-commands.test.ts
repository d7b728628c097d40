import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * package.json and the source must agree: every contributed command is registered through
 * `registerCommand`, every registration is contributed, and menus, view welcome links and
 * walkthrough links name only real commands and views. Plain Node: reads files, no VS Code.
 */
const root = path.resolve(__dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  contributes: {
    commands: Array<{ command: string; title: string; category?: string }>;
    views: Record<string, Array<{ id: string }>>;
    viewsWelcome: Array<{ view: string; contents: string }>;
    menus: Record<string, Array<{ command: string; when?: string }>>;
    walkthroughs: Array<{ steps: Array<{ description: string; media: { markdown?: string } }> }>;
    jsonValidation: Array<{ url: string }>;
    viewsContainers: { activitybar: Array<{ icon: string }> };
  };
};
const c = pkg.contributes;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

function registeredCommands(): string[] {
  const ids: string[] = [];
  for (const file of sourceFiles(path.join(root, 'src'))) {
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\bregisterCommand\(\s*'(deltaSync\.[^']+)'/g)) ids.push(m[1] as string);
  }
  return ids;
}

describe('extension manifest and command registrations', () => {
  const declared = c.commands.map((x) => x.command);
  const registered = registeredCommands();

  it('registers every command package.json contributes', () => {
    const missing = declared.filter((id) => !registered.includes(id));
    assert.deepEqual(missing, []);
  });

  it('contributes every command the source registers', () => {
    const undeclared = registered.filter((id) => !declared.includes(id));
    assert.deepEqual(undeclared, []);
  });

  it('activation calls every function that registers commands, so each registration is reached', () => {
    const activation = fs.readFileSync(path.join(root, 'src', 'extension.ts'), 'utf8');
    const registrars = sourceFiles(path.join(root, 'src')).flatMap((f) => [...fs.readFileSync(f, 'utf8').matchAll(/export function (register\w+Commands)\(/g)].map((m) => m[1] as string));
    assert.ok(registrars.length > 0);
    assert.deepEqual(registrars.filter((name) => !new RegExp(`\\b${name}\\(`).test(activation)), []);
  });

  it('contributes no test-only command (deltaSyncTest.*, TestHooks.ts): no palette entry, menu or keybinding shows one to users', () => {
    const manifest = JSON.stringify(pkg.contributes);
    assert.equal(/deltaSyncTest\./.test(manifest), false);
  });

  it('hides no command from the palette: each asks for its tree row when run without one (issue 13, every action reachable from the palette)', () => {
    const hidden = (c.menus.commandPalette ?? []).filter((m) => m.when === 'false').map((m) => m.command);
    assert.deepEqual(hidden, []);
  });

  it('registers each command once', () => {
    const dupes = registered.filter((id, i) => registered.indexOf(id) !== i);
    assert.deepEqual(dupes, []);
  });

  it('registers commands only through the wrapper, never vscode.commands.registerCommand directly', () => {
    const direct = sourceFiles(path.join(root, 'src'))
      .filter((f) => !f.endsWith(path.join('views', 'commandRegistry.ts')))
      .filter((f) => /commands\.registerCommand\(/.test(fs.readFileSync(f, 'utf8')));
    assert.deepEqual(direct, []);
  });

  it('names commands deltaSync.<area>.<action> with a title and the Delta Sync category', () => {
    for (const x of c.commands) {
      assert.match(x.command, /^deltaSync\.[a-z]+\.[a-zA-Z]+$/, x.command);
      assert.ok(x.title.length > 0, x.command);
      assert.equal(x.category, 'Delta Sync', x.command);
    }
  });

  it('menus name only declared commands and existing views', () => {
    const viewIds = Object.values(c.views).flat().map((v) => v.id);
    for (const [menu, items] of Object.entries(c.menus)) {
      for (const item of items) {
        assert.ok(declared.includes(item.command), `${menu}: ${item.command}`);
        for (const m of (item.when ?? '').matchAll(/view == ([\w.]+)/g)) assert.ok(viewIds.includes(m[1] as string), `${menu}: ${m[1]}`);
      }
    }
    for (const w of c.viewsWelcome) assert.ok(viewIds.includes(w.view), w.view);
  });

  it('links in welcome views and walkthrough steps run declared or built-in commands', () => {
    const builtIn = ['vscode.openFolder'];
    const texts = [...c.viewsWelcome.map((w) => w.contents), ...c.walkthroughs.flatMap((w) => w.steps.map((s) => s.description))];
    const linked = texts.flatMap((t) => [...t.matchAll(/\(command:([\w.]+)\)/g)].map((m) => m[1] as string));
    assert.ok(linked.length > 0);
    for (const id of linked) assert.ok(declared.includes(id) || builtIn.includes(id), id);
  });

  it('the activity-bar icon and walkthrough media exist in the repository', () => {
    const files = [...c.viewsContainers.activitybar.map((a) => a.icon), ...c.walkthroughs.flatMap((w) => w.steps.map((s) => s.media.markdown ?? ''))];
    for (const f of files) assert.ok(fs.existsSync(path.join(root, f)), f);
  });
});
