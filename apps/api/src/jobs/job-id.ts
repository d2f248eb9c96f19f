import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { Injectable, type OnModuleInit } from '@nestjs/common';
import { PUBLIC_JOB_TYPES, type PublicJobType } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { ArtifactStore, createOnceSecret } from '@tq/storage';

/** 12 hex digits (48 bits) of HMAC-SHA256: a made-up id passes with odds of one in 2.8e14. */
const TAG_LENGTH = 12;
const BODY = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|k[0-9a-f]{32})$/;

/**
 * Public job ids say what they are ("train-<uuid>-<tag>") so GET /v1/jobs/:id finds the queue
 * without a lookup table. With an Idempotency-Key header the body is derived from the key, and
 * BullMQ's de-duplication by id makes a retried POST return the same job instead of a second one
 * (the tag of a derived body is as deterministic as the body). Keys are per tenant: the body is
 * derived from the tenant and the key together, so one Idempotency-Key sent by two tenants makes
 * two jobs. The tag, an HMAC of "<type>-<body>" keyed by JOB_ID_SECRET, proves this system issued
 * the id: one it can no longer find answers 410 Gone, one it never issued (or a mistyped one) 404.
 */
export function newJobId(key: Buffer, type: PublicJobType, idempotencyKey?: string, tenant?: string): string {
  // A newline cannot be in a tenant: "a" + "\nb..." and "a\nb" + "..." never meet.
  const body = idempotencyKey
    ? `k${createHash('sha256')
        .update(`${tenant ?? ''}\n${idempotencyKey}`)
        .digest('hex')
        .slice(0, 32)}`
    : randomUUID();
  return `${type}-${body}-${tagOf(key, `${type}-${body}`)}`;
}

/** Type names hold dashes too ("profile-dataset"): the longest type the id starts with, then a dash. */
export function typeOfJobId(id: string): PublicJobType | undefined {
  const matching = PUBLIC_JOB_TYPES.filter((type) => id.startsWith(`${type}-`));
  return matching.sort((a, b) => b.length - a.length)[0];
}

/** Whether `id` is well formed and its tag verifies under `key`: an id this system issued. */
export function isIssuedJobId(key: Buffer, id: string): boolean {
  const type = typeOfJobId(id);
  const cut = id.lastIndexOf('-');
  if (!type || cut <= type.length) return false;
  const signed = id.slice(0, cut);
  const tag = id.slice(cut + 1);
  if (tag.length !== TAG_LENGTH || !BODY.test(signed.slice(type.length + 1))) return false;
  return timingSafeEqual(Buffer.from(tag), Buffer.from(tagOf(key, signed)));
}

function tagOf(key: Buffer, signed: string): string {
  return createHmac('sha256', key).update(signed).digest('hex').slice(0, TAG_LENGTH);
}

/** The API's job-id key: JOB_ID_SECRET, else a random one made once and kept in the artifact store. */
@Injectable()
export class JobIds implements OnModuleInit {
  private key: Buffer | undefined;

  constructor(private readonly store: ArtifactStore) {}

  async onModuleInit(): Promise<void> {
    const secret = loadConfig().JOB_ID_SECRET;
    this.key = secret ? Buffer.from(secret) : await createOnceSecret(this.store, 'job-id-key');
  }

  /** A job id; with an Idempotency-Key, the same one for the same tenant and key. */
  issue(type: PublicJobType, idempotencyKey?: string, tenant?: string): string {
    return newJobId(this.keyOrThrow(), type, idempotencyKey, tenant);
  }

  issuedHere(id: string): boolean {
    return isIssuedJobId(this.keyOrThrow(), id);
  }

  private keyOrThrow(): Buffer {
    if (!this.key) throw new Error('JobIds used before module init');
    return this.key;
  }
}
