import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Request } from 'express';
import type { Principal } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { AUTH_OFF, ApiKeyStore, Authenticator, ensureFirstAdminKey } from '@tq/auth';
import { RedisClientHolder } from '@tq/queue';

/** The request's caller, set by the auth guard or the auth middleware. */
export interface AuthedRequest extends Request {
  principal?: Principal;
}

/**
 * The API's side of API keys: the store, the cached authenticator listening for revocations, and
 * the first-start admin key (printed once, stored hashed) when none exists and none is configured.
 */
@Injectable()
export class AuthService implements OnModuleInit, OnApplicationShutdown {
  readonly enabled: boolean;
  readonly keys: ApiKeyStore;
  private readonly authenticator: Authenticator;
  private readonly logger = new Logger('auth');

  constructor(private readonly redis: RedisClientHolder) {
    const config = loadConfig();
    this.enabled = config.AUTH === 'on';
    this.keys = new ApiKeyStore(redis.client, redis.prefix);
    this.authenticator = new Authenticator(this.keys, {
      adminKey: config.TQ_ADMIN_KEY,
      cacheSeconds: config.AUTH_CACHE_SECONDS,
    });
  }

  async onModuleInit(): Promise<void> {
    if (!this.enabled) {
      this.logger.warn('AUTH=off: every caller is an admin (allowed on a loopback HOST only)');
      return;
    }
    // Neither waits for Redis: the API starts (and answers 503) while Redis is away.
    this.authenticator.listen(this.redis.client, (err: unknown) => {
      this.logger.error(`revocation channel: ${String(err)}; revokes reach this replica within AUTH_CACHE_SECONDS`);
    });
    if (!loadConfig().TQ_ADMIN_KEY) this.firstAdminKeyWhenReady();
  }

  /**
   * The first-start admin key, made once Redis is ready: the API's connection has no offline queue,
   * so tried at module init it failed ("Stream isn't writeable") and no key was ever made. Tried again
   * on each reconnect until one attempt got an answer.
   */
  private firstAdminKeyWhenReady(): void {
    const client = this.redis.client;
    const attempt = () => {
      ensureFirstAdminKey(this.keys, client, this.redis.prefix).then(
        (key) => {
          client.off('ready', attempt);
          if (key) this.logger.warn(`first start: created the admin API key ${key} — shown once, stored hashed`);
        },
        (err: unknown) =>
          this.logger.error(`could not create the first admin key (retried on reconnect): ${String(err)}`),
      );
    };
    client.on('ready', attempt);
    if (this.redis.ready) attempt();
  }

  onApplicationShutdown(): void {
    this.authenticator.close();
  }

  /** The caller of an Authorization header value, or UnauthorizedError; AUTH=off: AUTH_OFF. */
  authenticate(authorization: string | undefined): Promise<Principal> {
    return this.enabled ? this.authenticator.authenticate(authorization) : Promise.resolve(AUTH_OFF);
  }

  /** A revoke answered by this replica takes effect here before the answer (others: pub/sub). */
  forget(id: string): void {
    this.authenticator.forget(id);
  }
}
