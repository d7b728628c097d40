import type { InputOptions, PickItem, Prompter } from '../../src/views/PostgresConnectionForm';

/**
 * A Prompter that answers each prompt from a script, in order (what VS Code's input boxes
 * and quick picks would answer), and records what was asked. A pick answer is the label
 * chosen; an input answer that the prompt's validation refuses fails the test.
 */
export type Answer = string | undefined | ((o: InputOptions) => string | undefined);
export interface Asked {
  kind: 'input' | 'pick' | 'message' | 'progress';
  title: string;
  value?: string;
  password?: boolean;
  labels?: string[];
}

/**
 * A Prompter that answers each prompt from a script, in order (what VS Code's input boxes
 * and quick picks would answer), and records what was asked. A pick answer is the label
 * chosen; an input answer that the prompt's validation refuses fails the test.
 */

export class ScriptedPrompter implements Prompter {
  readonly asked: Asked[] = [];
  constructor(private readonly script: Answer[]) {}
  private next(): Answer {
    if (this.script.length === 0) throw new Error(`unexpected prompt after: ${JSON.stringify(this.asked.at(-1))}`);
    return this.script.shift();
  }
  async input(o: InputOptions): Promise<string | undefined> {
    this.asked.push({ kind: 'input', title: o.title, value: o.value, password: o.password === true });
    const a = this.next();
    const v = typeof a === 'function' ? a(o) : a;
    if (v !== undefined && o.validate?.(v) !== undefined) throw new Error(`the script answered "${v}" to ${o.title}, which is invalid: ${o.validate(v)}`);
    return v;
  }
  async pick<T extends PickItem>(items: readonly T[], o: { title: string }): Promise<T | undefined> {
    this.asked.push({ kind: 'pick', title: o.title, labels: items.map((i) => i.label) });
    const a = this.next();
    if (a === undefined) return undefined;
    const found = items.find((i) => i.label === a);
    if (!found) throw new Error(`no "${String(a)}" in ${o.title}: ${items.map((i) => i.label).join(', ')}`);
    return found;
  }
  async progress<T>(title: string, work: () => Promise<T>): Promise<T> {
    this.asked.push({ kind: 'progress', title });
    return work();
  }
  async message(_severity: string, text: string, ...actions: string[]): Promise<string | undefined> {
    this.asked.push({ kind: 'message', title: text, labels: actions });
    return actions.length ? (this.next() as string | undefined) : undefined;
  }
}
