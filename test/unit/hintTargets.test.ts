import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CliCommand } from '../../src/cli/CliCommand';
import { createRegistry, PROGRAM } from '../../src/cli/main';
import { mappingJsonSchema } from '../../src/sync/mapping/mappingJsonSchema';
import { renderAction } from '../../src/sync/userActions';
import type { UserActionId } from '../../src/sync/userActions';

/**
 * Every command, flag and setting a hint tells the user to use exists, so renaming one
 * cannot leave a dead hint: the CLI commands and flags against the CLI's own command tree
 * and option specs (CliCommand.options), the palette commands against package.json's
 * contributes.commands, VS Code settings against contributes.configuration, and the
 * `setting` an error names against the mapping's JSON Schema (from its zod schema), the
 * connection-string parameters the engine reads, or the environment variables it reads.
 * Read from the engine's and the front doors' sources, userActions' wordings,
 * docs/errors.md and the README.
 */

const ROOT = path.resolve(__dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  contributes: { commands: Array<{ command: string; title: string; category?: string }>; configuration: { properties: Record<string, unknown> } | Array<{ properties: Record<string, unknown> }> };
};

function sources(dir: string): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (p.endsWith('.ts')) out.push({ file: path.relative(ROOT, p), text: fs.readFileSync(p, 'utf8') });
  }
  return out;
}

const SRC = sources(path.join(ROOT, 'src'));
const DOCS = ['docs/errors.md', 'README.md'].map((f) => ({ file: f, text: fs.readFileSync(path.join(ROOT, f), 'utf8') }));
const ACTIONS: UserActionId[] = [
  'preview', 'initial-load', 'incremental-sync', 'repair', 'allow-mass-delete', 'grants',
  'neon-projects', 'neon-previews', 'neon-discard', 'databricks-test', 'databricks-tables',
];

/**
 * `delta-neon-sync a b --flag x`: the words that name the command, then the flags given.
 * `quoted`: only commands in backticks (how hints write them; the sources also use the
 * program's name in prose and as an application_name).
 */
function cliMentions(text: string, quoted = false): Array<{ words: string[]; flags: string[]; quote: string }> {
  const out: Array<{ words: string[]; flags: string[]; quote: string }> = [];
  const re = quoted ? new RegExp(`\`${PROGRAM} ([a-z][^\`\\n]*)\``, 'g') : new RegExp(`${PROGRAM} ([a-z][^\`'"\\n)]*)`, 'g');
  for (const m of text.matchAll(re)) {
    const tokens = (m[1] ?? '').trim().split(/\s+/);
    const words: string[] = [];
    for (const t of tokens) {
      if (!/^[a-z][a-z-]*$/.test(t)) break;
      words.push(t);
    }
    const flags = tokens.filter((t) => t.startsWith('--')).map((t) => t.replace(/[=,.;:].*$/, ''));
    out.push({ words, flags, quote: m[0] });
  }
  return out;
}

/** The leaf a mention names, or why not. */
function resolveCli(words: readonly string[]): { leaf?: CliCommand; error?: string } {
  const registry = createRegistry();
  const r = registry.resolve([...words]);
  if (!r) return { error: `no command "${words[0]}"` };
  if (r.command.subcommands && !r.command.run) return { error: `"${r.path.join(' ')}" is a group and "${words[r.path.length] ?? ''}" is none of its commands` };
  return { leaf: r.command };
}

/** Whether `dotted` (`columns.rename.email`, `key[0]`, `lineage.version`) is a path of the mapping's JSON Schema. */
function inMappingSchema(dotted: string): boolean {
  const segs = dotted.replace(/\[\d+\]/g, '').split('.').filter(Boolean);
  const walk = (node: unknown, i: number): boolean => {
    if (i === segs.length) return true;
    if (typeof node !== 'object' || node === null) return false;
    const n = node as { properties?: Record<string, unknown>; additionalProperties?: unknown; anyOf?: unknown[]; oneOf?: unknown[]; allOf?: unknown[]; items?: unknown };
    const seg = segs[i] as string;
    if (n.properties && seg in n.properties && walk(n.properties[seg], i + 1)) return true;
    if (typeof n.additionalProperties === 'object' && walk(n.additionalProperties, i + 1)) return true;
    for (const alt of [...(n.anyOf ?? []), ...(n.oneOf ?? []), ...(n.allOf ?? [])]) if (walk(alt, i)) return true;
    return n.items !== undefined && walk(n.items, i);
  };
  return walk(mappingJsonSchema(), 0);
}

const configuration = Array.isArray(pkg.contributes.configuration)
  ? Object.assign({}, ...pkg.contributes.configuration.map((c) => c.properties)) as Record<string, unknown>
  : pkg.contributes.configuration.properties;
const paletteTitles = new Set(pkg.contributes.commands.map((c) => `${c.category ?? ''}: ${c.title}`));

/** Why the `setting` an error names does not exist (undefined: it does). */
function settingProblem(setting: string): string | undefined {
  if (setting.startsWith('--')) {
    const flag = setting.slice(2);
    const leaves = allLeaves(createRegistry().commands());
    return leaves.some((c) => c.options && flag in c.options) ? undefined : `no CLI command has the flag ${setting}`;
  }
  if (setting.startsWith('deltaSync.')) return setting in configuration ? undefined : `package.json contributes no setting ${setting}`;
  // Delta table properties are Delta's own names (delta.enableChangeDataFeed, ...).
  if (setting.startsWith('delta.')) return undefined;
  if (/^[A-Z][A-Z0-9_]*$/.test(setting)) {
    // Read as env.NAME, or by a prefix and a name (getter('DATABRICKS_') then get('HOST')).
    const splits = [...setting.matchAll(/_/g)].map((u) => [setting.slice(0, (u.index ?? 0) + 1), setting.slice((u.index ?? 0) + 1)] as const);
    const read = SRC.some((s) => s.text.includes(`.${setting}`) || splits.some(([pre, name]) => s.text.includes(`'${pre}'`) && s.text.includes(`('${name}')`)));
    return read ? undefined : `no source reads the environment variable ${setting}`;
  }
  if (inMappingSchema(setting)) return undefined;
  // A connection-string parameter: the engine reads it by name (params.get('x'), a list of them).
  if (/^[a-z][a-z_]*$/.test(setting)) {
    const read = SRC.some((s) => s.text.split('\n').some((l) => l.includes(`'${setting}'`) && !/setting:|error\.setting ===/.test(l)));
    return read ? undefined : `"${setting}" is no mapping setting and no connection parameter the engine reads`;
  }
  return `"${setting}" is no path of the mapping's schema`;
}

function allLeaves(commands: readonly CliCommand[]): CliCommand[] {
  return commands.flatMap((c) => (c.subcommands ? allLeaves(c.subcommands) : [c]));
}

describe('every hint names a command, flag or setting that exists', () => {
  it('each leaf command of the CLI declares the options it parses', () => {
    const missing = allLeaves(createRegistry().commands()).filter((c) => c.run && !c.options).map((c) => c.name);
    assert.deepEqual(missing, []);
  });

  it("userActions' CLI wordings name CLI commands and flags that exist", () => {
    const dead: string[] = [];
    for (const id of ACTIONS) {
      for (const m of cliMentions(renderAction({ id }, 'cli'))) {
        const { leaf, error } = resolveCli(m.words);
        if (error) dead.push(`${id}: ${m.quote}: ${error}`);
        for (const f of m.flags) if (leaf && !(leaf.options && f.slice(2) in leaf.options)) dead.push(`${id}: ${m.quote}: no flag ${f}`);
      }
    }
    assert.deepEqual(dead, []);
  });

  it("userActions' VS Code wordings name palette commands that exist", () => {
    const dead: string[] = [];
    for (const id of ACTIONS) {
      for (const m of renderAction({ id }, 'vscode').matchAll(/"(Delta Sync: [^"]+)"/g)) if (!paletteTitles.has(m[1] as string)) dead.push(`${id}: ${m[1]}`);
    }
    assert.deepEqual(dead, []);
  });

  it('the CLI commands and flags that sources and docs tell the user to run exist', () => {
    const dead: string[] = [];
    const texts = [...SRC.filter((s) => !s.file.startsWith('src/cli/commands/')).map((s) => ({ ...s, quoted: true })), ...DOCS.map((d) => ({ ...d, quoted: false }))];
    for (const { file, text, quoted } of texts) {
      for (const m of cliMentions(text, quoted)) {
        if (m.words.length === 0) continue;
        const { leaf, error } = resolveCli(m.words);
        if (error) dead.push(`${file}: ${m.quote}: ${error}`);
        for (const f of m.flags) if (leaf && f !== '--help' && !(leaf.options && f.slice(2) in leaf.options)) dead.push(`${file}: ${m.quote}: no flag ${f}`);
      }
    }
    assert.deepEqual(dead, []);
  });

  it('the palette commands that sources and docs/errors.md name exist', () => {
    const dead: string[] = [];
    for (const { file, text } of [...SRC, ...DOCS]) {
      // A palette command is named as such: `the "Delta Sync: X" command` or `("Delta Sync: X")`.
      for (const m of text.matchAll(/(?:the "(Delta Sync: [^"$]+)" command|\("(Delta Sync: [^"$]+)"\))/g)) {
        const title = (m[1] ?? m[2]) as string;
        if (!paletteTitles.has(title)) dead.push(`${file}: ${title}`);
      }
    }
    assert.deepEqual(dead, []);
  });

  it('the VS Code settings that sources and docs name exist', () => {
    const dead: string[] = [];
    // Where the user is told about a setting: docs/errors.md, the README, and hint / setting / message lines of the sources.
    const lines = [...DOCS, ...SRC].flatMap(({ file, text }) => text.split('\n').filter((l) => file.endsWith('.md') || /hint|setting|SyncError|Message\(/.test(l)).map((l) => ({ file, l })));
    for (const { file, l } of lines) {
      for (const m of l.matchAll(/\bdeltaSync\.[a-zA-Z]+(?:\.[a-zA-Z]+)*/g)) {
        const name = m[0];
        // Command and view ids share the prefix.
        if (pkg.contributes.commands.some((c) => c.command === name) || /^deltaSync\.(sources|targets|mappings|progress|preview|report)$/.test(name)) continue;
        if (!(name in configuration)) dead.push(`${file}: ${name}`);
      }
    }
    assert.deepEqual([...new Set(dead)], []);
  });

  it("every literal `setting` an error names is a mapping setting, a connection parameter, a CLI flag, a VS Code setting or an environment variable that exists", () => {
    const dead: string[] = [];
    let checked = 0;
    for (const { file, text } of SRC) {
      for (const m of text.matchAll(/\bsetting: '([^'$]+)'/g)) {
        checked++;
        const problem = settingProblem(m[1] as string);
        if (problem) dead.push(`${file}: ${problem}`);
      }
    }
    assert.ok(checked > 40, `only ${checked} settings found: the scan is broken`);
    assert.deepEqual(dead, []);
  });

  it('the check itself tells a dead name from a live one', () => {
    assert.equal(settingProblem('safety.maxDeleteShare'), undefined);
    assert.equal(settingProblem('columns.rename.email'), undefined);
    assert.match(settingProblem('safety.maxDeleteRatio') ?? '', /no path|no mapping setting/);
    assert.match(settingProblem('--allow-mass-deletes') ?? '', /no CLI command has the flag/);
    assert.match(settingProblem('deltaSync.folders') ?? '', /no setting/);
    assert.equal(resolveCli(['sync']).error, undefined);
    assert.match(resolveCli(['neon', 'drop']).error ?? '', /is a group/);
  });
});
