/**
 * The answers of the Databricks Postgres API (Lakebase Autoscaling, GET /api/2.0/postgres/...)
 * that LakebaseCatalog reads and test/helpers/fakeLakebaseWorkspace.ts serves, as JSON on the
 * wire (snake_case). Neither client this project installs exports them
 * (@databricks/sdk-experimental 0.17 has no `postgres` service, @databricks/lakebase only the
 * credential), so they are written down here from the Databricks SDK's generated model of the
 * API (databricks-sdk-py `databricks/sdk/service/postgres.py`: Project, ProjectStatus, Branch,
 * BranchStatus, Endpoint, EndpointStatus, EndpointHosts, Database, DatabaseDatabaseStatus,
 * List*Response) and the REST reference (docs.databricks.com/api/workspace/postgres).
 *
 * What an answer carries is `status` (output only); `spec` is what a create or update sends
 * (input only) and is not part of these types: read nothing from it. Resource ids are RFC 1123
 * labels (lowercase letters, digits, "-"), so a resource id is never a Postgres name: a
 * database's Postgres name is `status.postgres_database` (the default database of a project
 * is `.../databases/databricks-postgres`, Postgres `databricks_postgres`), a role's is its own
 * status, not the last segment of `status.role`.
 */

/** RFC 3339 text, e.g. "2026-11-30T09:00:00Z". */
export type ApiTimestamp = string;

/** A list call's page: at most `page_size` items (the server may send fewer), and the next page's token, absent or "" on the last page. */
export interface ListPage {
  next_page_token?: string;
}

/** projects/{project_id} */
export interface PostgresProject {
  name?: string;
  uid?: string;
  project_id?: string;
  create_time?: ApiTimestamp;
  update_time?: ApiTimestamp;
  delete_time?: ApiTimestamp;
  purge_time?: ApiTimestamp;
  status?: PostgresProjectStatus;
}

export interface PostgresProjectStatus {
  project_id?: string;
  /** The effective human-readable project name. */
  display_name?: string;
  /** The default branch's full resource name, projects/{project_id}/branches/{branch_id}. */
  default_branch?: string;
  pg_version?: number;
  owner?: string;
  budget_policy_id?: string;
  compute_last_active_time?: ApiTimestamp;
  enable_pg_native_login?: boolean;
  history_retention_duration?: string;
  synthetic_storage_size_bytes?: number;
  branch_logical_size_limit_bytes?: number;
}

export type PostgresBranchState = 'ARCHIVED' | 'DELETED' | 'IMPORTING' | 'INIT' | 'READY' | 'RESETTING';

/** projects/{project_id}/branches/{branch_id} */
export interface PostgresBranch {
  name?: string;
  uid?: string;
  branch_id?: string;
  /** The project, projects/{project_id}. */
  parent?: string;
  create_time?: ApiTimestamp;
  update_time?: ApiTimestamp;
  status?: PostgresBranchStatus;
}

export interface PostgresBranchStatus {
  branch_id?: string;
  current_state?: PostgresBranchState;
  pending_state?: PostgresBranchState;
  /** Whether this is the project's default branch. */
  default?: boolean;
  is_protected?: boolean;
  source_branch?: string;
  source_branch_lsn?: string;
  source_branch_time?: ApiTimestamp;
  state_change_time?: ApiTimestamp;
  expire_time?: ApiTimestamp;
  delete_time?: ApiTimestamp;
  purge_time?: ApiTimestamp;
  logical_size_bytes?: number;
}

export type PostgresEndpointType = 'ENDPOINT_TYPE_READ_WRITE' | 'ENDPOINT_TYPE_READ_ONLY';
export type PostgresEndpointState = 'ACTIVE' | 'DEGRADED' | 'IDLE' | 'INIT';

/** projects/{project_id}/branches/{branch_id}/endpoints/{endpoint_id} */
export interface PostgresEndpoint {
  name?: string;
  uid?: string;
  endpoint_id?: string;
  /** The branch, projects/{project_id}/branches/{branch_id}. */
  parent?: string;
  create_time?: ApiTimestamp;
  update_time?: ApiTimestamp;
  status?: PostgresEndpointStatus;
}

export interface PostgresEndpointStatus {
  endpoint_id?: string;
  /** A branch has one READ_WRITE endpoint. */
  endpoint_type?: PostgresEndpointType;
  current_state?: PostgresEndpointState;
  pending_state?: PostgresEndpointState;
  hosts?: PostgresEndpointHosts;
  disabled?: boolean;
  autoscaling_limit_min_cu?: number;
  autoscaling_limit_max_cu?: number;
  suspend_timeout_duration?: string;
  last_active_time?: ApiTimestamp;
}

export interface PostgresEndpointHosts {
  /** The host to connect to: for a read-write endpoint its primary compute, direct (no pooler). */
  host?: string;
  read_only_host?: string;
  read_only_pooled_host?: string;
  /** The read-write host through the connection pooler (read-write endpoints only). */
  read_write_pooled_host?: string;
}

/** projects/{project_id}/branches/{branch_id}/databases/{database_id} */
export interface PostgresDatabase {
  name?: string;
  database_id?: string;
  /** The branch, projects/{project_id}/branches/{branch_id}. */
  parent?: string;
  create_time?: ApiTimestamp;
  update_time?: ApiTimestamp;
  status?: PostgresDatabaseStatus;
}

export interface PostgresDatabaseStatus {
  database_id?: string;
  /** The Postgres database's name (what a connection names). */
  postgres_database?: string;
  /** The owning role's resource name, projects/{p}/branches/{b}/roles/{role_id}. */
  role?: string;
}

export interface ListPostgresProjectsResponse extends ListPage {
  projects?: PostgresProject[];
}
export interface ListPostgresBranchesResponse extends ListPage {
  branches?: PostgresBranch[];
}
export interface ListPostgresEndpointsResponse extends ListPage {
  endpoints?: PostgresEndpoint[];
}
export interface ListPostgresDatabasesResponse extends ListPage {
  databases?: PostgresDatabase[];
}

/**
 * Compile-time check that a reader reads only fields the wire type has: true when every key
 * of R is a key of W, recursively through nested objects (arrays and primitives end the walk).
 */
export type ReadsOnlyWireFields<R, W> = [Exclude<keyof R, keyof W>] extends [never]
  ? { [K in keyof R & keyof W]-?: NonNullable<R[K]> extends readonly unknown[] ? true : NonNullable<R[K]> extends object ? ReadsOnlyWireFields<NonNullable<R[K]>, NonNullable<W[K]>> : true }[keyof R & keyof W] extends true
    ? true
    : false
  : false;
