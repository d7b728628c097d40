import type { SecretStore, StateStore } from '../../src/platform/KeyValueStore';
import type { GlobalStateKey, GlobalStateShape } from '../../src/platform/StateKeys';

/** Hand-written in-memory stand-in for globalState; `data` shows what was stored. */
export class MemoryState implements StateStore {
  readonly data = new Map<string, unknown>();
  get<K extends GlobalStateKey>(key: K): GlobalStateShape[K] | undefined {
    return this.data.get(key) as GlobalStateShape[K] | undefined;
  }
  async update<K extends GlobalStateKey>(key: K, value: GlobalStateShape[K]): Promise<void> {
    this.data.set(key, structuredClone(value));
  }
}

/** Hand-written in-memory stand-in for SecretStorage; `data` shows what was stored. */
export class MemorySecrets implements SecretStore {
  readonly data = new Map<string, string>();
  async get(key: string): Promise<string | undefined> {
    return this.data.get(key);
  }
  async store(key: string, value: string): Promise<void> {
    this.data.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.data.delete(key);
  }
}
