import type * as vscode from 'vscode';
import type { SecretStore, StateStore } from './KeyValueStore';
import type { GlobalStateKey, GlobalStateShape } from './StateKeys';

/** `StateStore` over a VS Code Memento (globalState). */
export class MementoStateStore implements StateStore {
  constructor(private readonly memento: vscode.Memento) {}

  get<K extends GlobalStateKey>(key: K): GlobalStateShape[K] | undefined {
    return this.memento.get<GlobalStateShape[K]>(key);
  }

  async update<K extends GlobalStateKey>(key: K, value: GlobalStateShape[K]): Promise<void> {
    await this.memento.update(key, value);
  }
}

/** `SecretStore` over VS Code SecretStorage (the OS keychain or code-server's store). */
export class VsCodeSecretStore implements SecretStore {
  constructor(private readonly secrets: vscode.SecretStorage) {}

  async get(key: string): Promise<string | undefined> {
    return this.secrets.get(key);
  }

  async store(key: string, value: string): Promise<void> {
    await this.secrets.store(key, value);
  }

  async delete(key: string): Promise<void> {
    await this.secrets.delete(key);
  }
}
