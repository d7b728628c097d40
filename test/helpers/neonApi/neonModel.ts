import { EndpointPoolerMode, EndpointState, EndpointType, OperationAction, OperationStatus } from '@neondatabase/api-client';
import type { Branch, Database, Endpoint, Operation, ProjectListItem, Role } from '@neondatabase/api-client';

/**
 * The resources of the local Neon API stand-in, built as the package's own types (so a
 * field the real API has and we forget, or a wrong enum value, fails to compile). Each
 * Neon database of a branch is a real database on the test PostgreSQL (`realName`).
 */

export interface ModelDatabase {
  db: Database;
  realName: string;
}

export interface ModelRole {
  role: Role;
  password: string;
}

export interface ModelBranch {
  branch: Branch;
  annotations: Record<string, string>;
  databases: Map<string, ModelDatabase>;
  roles: Map<string, ModelRole>;
  endpoints: Endpoint[];
  /** Fault: polls of its endpoints that still report "starting". */
  startingPolls: number;
}

export interface ModelProject {
  project: ProjectListItem;
  branches: Map<string, ModelBranch>;
  operations: Map<string, Operation>;
}

const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

let seq = 0;
const WORDS = ['frosty', 'quiet', 'bold', 'misty', 'silent', 'proud', 'wispy', 'shy', 'calm', 'young'];
const NOUNS = ['meadow', 'river', 'smoke', 'term', 'bread', 'fog', 'leaf', 'boat', 'moon', 'field'];

/** Neon-style ids: `br-wispy-meadow-a1b2c3`, `ep-...`, a project id `calm-river-12345678`. */
export function neonId(prefix: string): string {
  seq++;
  const w = WORDS[seq % WORDS.length] as string;
  const n = NOUNS[(seq * 7) % NOUNS.length] as string;
  const tail = `${seq.toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  return `${prefix ? `${prefix}-` : ''}${w}-${n}-${tail}`.slice(0, 60);
}

export function operationId(): string {
  const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
}

export function buildProject(id: string, name: string, port: number): ProjectListItem {
  const t = now();
  return {
    id, name, platform_id: 'aws', region_id: 'aws-us-east-2', provisioner: 'k8s-neonvm', pg_version: 15,
    proxy_host: `127.0.0.1:${port}`, branch_logical_size_limit: 0, branch_logical_size_limit_bytes: 0,
    store_passwords: true, active_time: 0, cpu_used_sec: 0, creation_source: 'console', created_at: t, updated_at: t,
    owner_id: '00000000-0000-4000-a000-000000000001',
  };
}

export function buildBranch(projectId: string, id: string, name: string, parent: Branch | undefined, isDefault: boolean, state: 'init' | 'ready'): Branch {
  const t = now();
  return {
    id, project_id: projectId, name, current_state: state, ...(state === 'init' ? { pending_state: 'ready' } : {}),
    state_changed_at: t, creation_source: 'console', default: isDefault, primary: isDefault, protected: false,
    cpu_used_sec: 0, compute_time_seconds: 0, active_time_seconds: 0, written_data_bytes: 0, data_transfer_bytes: 0,
    created_at: t, updated_at: t, init_source: 'parent-data',
    ...(parent ? { parent_id: parent.id, parent_lsn: '0/1A2B3C4', parent_timestamp: t } : {}),
  };
}

export function buildEndpoint(projectId: string, branchId: string, state: EndpointState, pending?: EndpointState): Endpoint {
  const t = now();
  const id = neonId('ep');
  return {
    host: '127.0.0.1', id, project_id: projectId, branch_id: branchId, autoscaling_limit_min_cu: 0.25, autoscaling_limit_max_cu: 0.25,
    region_id: 'aws-us-east-2', type: EndpointType.ReadWrite, current_state: state, ...(pending ? { pending_state: pending } : {}),
    settings: {}, pooler_enabled: false, pooler_mode: EndpointPoolerMode.Transaction, disabled: false, passwordless_access: false,
    creation_source: 'console', created_at: t, updated_at: t, proxy_host: '127.0.0.1', suspend_timeout_seconds: 0, provisioner: 'k8s-neonvm',
  };
}

export function buildDatabase(branchId: string, name: string, owner: string, id: number): Database {
  const t = now();
  return { id, branch_id: branchId, name, owner_name: owner, created_at: t, updated_at: t };
}

export function buildRole(branchId: string, name: string): Role {
  const t = now();
  return { branch_id: branchId, name, protected: false, authentication_method: 'password', created_at: t, updated_at: t };
}

export function buildOperation(projectId: string, branchId: string, action: OperationAction, status: OperationStatus, endpointId?: string): Operation {
  const t = now();
  return {
    id: operationId(), project_id: projectId, branch_id: branchId, ...(endpointId ? { endpoint_id: endpointId } : {}),
    action, status, failures_count: 0, created_at: t, updated_at: t, total_duration_ms: 0,
  };
}

export { EndpointState, OperationAction, OperationStatus };
