/**
 * The narrow storage interfaces the view models depend on, so they run in plain Node
 * tests with in-memory fakes. `VsCodeStores.ts` implements them over VS Code.
 */
import type { GlobalStateKey, GlobalStateShape } from './StateKeys';

export interface StateStore {
  get<K extends GlobalStateKey>(key: K): GlobalStateShape[K] | undefined;
  update<K extends GlobalStateKey>(key: K, value: GlobalStateShape[K]): Promise<void>;
}

export interface SecretStore {
  get(key: string): Promise<string | undefined>;
  store(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}
