import pg from 'pg';
import type { ClientConfig } from 'pg';

/**
 * libpq's channel_binding values. SCRAM channel binding (SCRAM-SHA-256-PLUS) ties the
 * password exchange to the TLS connection, so a man in the middle that terminates TLS with
 * its own certificate cannot relay the login.
 * - disable: never bind.
 * - prefer (the default, as in libpq): bind when the server offers SCRAM-SHA-256-PLUS.
 * - require: refuse to log in unless the server authenticated with SCRAM-SHA-256-PLUS
 *   (no plain-text or MD5 password, no trust login, no SCRAM without binding).
 */
export type ChannelBinding = 'disable' | 'prefer' | 'require';

export const CHANNEL_BINDING_MODES: readonly ChannelBinding[] = ['disable', 'prefer', 'require'];

/** The `code` of the error a ChannelBindingRequiredClient fails its connect with. */
export const CHANNEL_BINDING_REFUSED = 'CHANNEL_BINDING_REQUIRED';

const PLUS = 'SCRAM-SHA-256-PLUS';

/** The parts of pg.Client this module hooks into (pg 8.x; not in its type declarations). */
interface ClientInternals {
  _handleAuthSASL(msg: { mechanisms: string[] }): void;
  _handleAuthCleartextPassword(msg: unknown): void;
  _handleAuthMD5Password(msg: unknown): void;
  _handleReadyForQuery(msg: unknown): void;
}

/**
 * A pg.Client for channel_binding=require. node-postgres alone only *prefers* binding
 * (`enableChannelBinding` uses SCRAM-SHA-256-PLUS when offered and silently falls back);
 * this client refuses every login that would not be bound, before any password is sent,
 * and fails its connect with an Error whose code is CHANNEL_BINDING_REFUSED.
 */
export class ChannelBindingRequiredClient extends pg.Client {
  /** The SASL mechanism the login used (SCRAM-SHA-256-PLUS once bound). */
  authMechanism?: string;
  private refused = false;

  constructor(config?: string | ClientConfig) {
    // Not a copy of `config`: pg.Pool hands its options with the password non-enumerable.
    super(config);
    const self = this as unknown as ClientInternals & { enableChannelBinding: boolean };
    self.enableChannelBinding = true;
    const sasl = self._handleAuthSASL.bind(this);
    const ready = self._handleReadyForQuery.bind(this);
    self._handleAuthSASL = (msg) => {
      if (!msg.mechanisms.includes(PLUS)) {
        this.refuse(`the server offered ${msg.mechanisms.join(', ')} but not ${PLUS}${this.ssl ? '' : ' (the connection has no TLS)'}`);
        return;
      }
      this.authMechanism = PLUS;
      sasl(msg);
    };
    self._handleAuthCleartextPassword = () => this.refuse('the server asked for a plain-text password');
    self._handleAuthMD5Password = () => this.refuse('the server asked for an MD5 password');
    // Ignore what the server sends after a refusal (it may already be in the same packet).
    self._handleReadyForQuery = (msg) => {
      if (!this.refused) ready(msg);
    };
    // A login without any password exchange (trust, or a pooler that skips it) is not bound either.
    this.connection.on('authenticationOk', () => {
      if (this.authMechanism === undefined && !this.refused) this.refuse('the server let the client in without a password exchange');
    });
  }

  /** Whether a connected client's login was bound to its TLS connection. */
  static isBound(client: unknown): boolean {
    return (client as { authMechanism?: unknown }).authMechanism === PLUS;
  }

  private refuse(why: string): void {
    if (this.refused) return;
    this.refused = true;
    const err = Object.assign(new Error(`channel_binding=require, but ${why}; the login was not bound to the TLS connection`), { code: CHANNEL_BINDING_REFUSED });
    // Fails the pending connect (pg reports connection errors through this event), then
    // closes the socket: nothing more is sent to the server.
    this.connection.emit('error', err);
    this.connection.stream.destroy();
  }
}
