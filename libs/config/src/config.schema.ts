import { z } from 'zod';
import { ALL_QUEUES } from '@tq/contracts';
import { KEY_ID_PATTERN, encryptionKeys } from './encryption-keys';

const csvOf = <T extends string>(values: readonly T[]) =>
  z.string().transform((s, ctx) => {
    const items = s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    for (const item of items)
      if (!values.includes(item as T))
        ctx.addIssue({ code: 'custom', message: `unknown "${item}"; expected one of ${values.join(', ')}` });
    return items as T[];
  });

/**
 * A key prefix: letters, digits, `:_-`, and at most one non-empty hash tag (`{tq}`, `tq{a}`). On a
 * Redis Cluster only the part in braces is hashed, so every key under the prefix lands in one slot.
 */
export const KEY_PREFIX = /^(?=.{1,64}$)[A-Za-z0-9:_-]*(\{[A-Za-z0-9:_-]+\})?[A-Za-z0-9:_-]*$/;
export const hasHashTag = (prefix: string): boolean => /\{[^{}]+\}/.test(prefix);

export interface RedisNode {
  host: string;
  port: number;
}

/** "host:port,host:port" (IPv6 in brackets: "[::1]:7000"). */
const redisNodes = z.string().transform((s, ctx) => {
  const nodes: RedisNode[] = [];
  for (const item of s.split(',').map((x) => x.trim())) {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(item);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not host:port (a comma list of cluster nodes)` });
      continue;
    }
    nodes.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
  }
  return nodes;
});

/** Every environment variable the system reads, with its default. Nothing else reads process.env. */
const configFields = z.object({
  /**
   * One Redis. With REDIS_CLUSTER_NODES set its host is not used; its user, password and scheme
   * (rediss:// for TLS) apply to every cluster node.
   */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /**
   * A Redis Cluster instead of one Redis: some of its nodes (the rest are discovered), e.g.
   * "10.0.0.1:7000,10.0.0.2:7000". Every connection is then a cluster client, and QUEUE_PREFIX
   * must carry a hash tag.
   */
  REDIS_CLUSTER_NODES: redisNodes.optional(),
  /**
   * BullMQ key prefix: tests use a unique one each, so runs never see each other's jobs. On a
   * cluster it needs a hash tag (`{tq}`): BullMQ's scripts touch several keys of a queue at once,
   * and the system's own scripts keys of several queues, which a cluster allows only in one slot.
   */
  QUEUE_PREFIX: z
    .string()
    .regex(KEY_PREFIX, 'letters, digits, ":", "_", "-" and at most one hash tag like {tq}; 64 characters at most')
    .default('tq'),
  ARTIFACT_DIR: z.string().min(1).default('.data'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('127.0.0.1'),
  /** Which queues this worker serves; all of them when unset. */
  WORKER_QUEUES: csvOf(ALL_QUEUES).prefault(ALL_QUEUES.join(',')),
  /**
   * Each worker serves its own Prometheus metrics (GET /metrics on HOST) at this port. One worker
   * per container (compose) keeps the default; several on one host need one port each (npm start
   * counts up from it) or 0, a free port the worker logs.
   */
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /**
   * The API's unauthenticated Prometheus listener (GET /metrics, the same text as /metrics on PORT,
   * which needs a key; and GET /livez), on HOST: for the cluster network only (Prometheus, the
   * kubelet), never published. 0: none.
   */
  API_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9465),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  /**
   * How far a worker's V8 heap may grow past what a full GC left live before the next one:
   * (1 + p/100)x. 0: V8's own factor, up to 4x when collections are cheap, which let a worker
   * inferring 1,000,000 rows hold 165 MB of garbage (peak RSS 380 MiB). Measured with bench/fleet:
   * 100 (2x): 282 MiB, 2 workers 1.74x one; 50: 256 MiB but 1.34-1.60x (the collections' CPU,
   * with two workers on two cores).
   */
  WORKER_HEAP_GROWING_PERCENT: z.coerce.number().int().min(0).max(300).default(100),
  /**
   * V8's allocation-site pretenuring in a worker: "off" (default) sets
   * --no-allocation-site-pretenuring at start (workerV8Flags). Reading a table allocates its rows
   * in young batches; when V8 sees enough of one batch survive a scavenge it allocates every later
   * row of that site in the old space, so each dies only at a full collection. When that happens
   * (it depends on timing: in some processes, not others) reading and profiling a table takes
   * about 1.6x the CPU and holds ~100 MB more. Measured profiling the 57.8 MB CSV of bench/ingest
   * in a process pinned to one core, five processes each: V8's default 4.8-5.4 CPU s (all slow),
   * off 3.0-3.1 s in four and 4.7 s in one; prepareTable's 4 passes (bench/ingest pinned, three
   * runs each) off 18.7-19.0 MB/s a pass, on 12.2-19.6. Training speed did not move (bench/train-speed).
   */
  WORKER_V8_PRETENURING: z.enum(['on', 'off']).default('off'),
  /**
   * The nice value a worker runs at, every thread of it (as SERVE_NICE): where workers share cores
   * with the API in one cgroup (`npm start`), a training job takes the CPU the API does not use
   * rather than the API's: measured (bench/worker-nice, both workers of 2 cores training), a job
   * read's p99 2.10-2.22x idle at 0, 1.03-1.28x at 10, training's samples/s 0.83-1.07x (two runs).
   * Between containers (cgroups) or hosts it changes nothing. 0: as started.
   */
  WORKER_NICE: z.coerce.number().int().min(-20).max(19).default(10),
  /** Force a compute backend (tensorflow | wasm | cpu); the best available when unset. */
  TQ_BACKEND: z.enum(['tensorflow', 'wasm', 'cpu']).optional(),
  MAX_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(200 * 1024 * 1024),
  /**
   * Bounds on an uploaded table, checked while the profiling job streams it: over one, the upload
   * fails with 413 naming the figure. Memory stays bounded either way (rows stream, a record is
   * at most MAX_TABLE_RECORD_BYTES).
   */
  MAX_TABLE_COLUMNS: z.coerce.number().int().positive().default(2_000),
  MAX_TABLE_ROWS: z.coerce.number().int().positive().default(2_000_000),
  MAX_TABLE_RECORD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /** How long POST /v1/datasets waits for the profile before answering 202 (the job goes on). */
  DATASET_PROFILE_WAIT_MS: z.coerce.number().int().min(0).default(300_000),
  /**
   * Lock lease of a worker on its job (renewed every half of it) and how often workers look for
   * jobs whose lock lapsed. A dead worker's job is taken over at worst LOCK_DURATION_MS after its
   * last renewal plus one STALLED_INTERVAL_MS (the look that finds the lock gone): 8 + 4 = 12 s
   * (the chaos run measured 64-82 s with 60 s + 30 s; 13.2-14.6 s with 10 s + 5 s, too close to the
   * 15 s goal). Short is safe: processors yield the event loop between batches, so renewals run; a
   * lock that lapsed anyway is taken back while nobody took the job, and a commit after a lost lock
   * is fenced off.
   */
  LOCK_DURATION_MS: z.coerce.number().int().min(1000).default(8_000),
  STALLED_INTERVAL_MS: z.coerce.number().int().min(500).default(4_000),
  /** Finished jobs kept per queue (by count and by age), for GET /v1/jobs/:id after the fact. */
  JOB_HISTORY_COUNT: z.coerce.number().int().min(1).max(1_000_000).default(1000),
  JOB_HISTORY_AGE_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .default(7 * 24 * 3600),
  /**
   * Bytes of finished jobs kept (their Redis payload and result, plus outputs and stored inputs):
   * past it the oldest finished jobs go, with their files. Age and count bound them as well.
   */
  JOB_HISTORY_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024 * 1024),
  /** How often one worker (whichever holds the sweep lock) applies the three bounds above. */
  RETENTION_SWEEP_MS: z.coerce.number().int().min(100).default(60_000),
  /**
   * The API's Redis commands fail after this long instead of waiting (and it queues none while
   * Redis is away): a request then answers 503 with Retry-After, never hangs.
   */
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(1500),
  /** Cap of the exponential backoff of every loop that retries Redis (reconnects, polls, waits). */
  REDIS_RETRY_MAX_MS: z.coerce.number().int().min(10).max(300_000).default(30_000),
  /**
   * Key of the tag in job ids that proves the system issued them (so a lost job answers 410, an
   * unknown id 404); at least 32 characters. Made once and kept in the artifact store when unset.
   */
  JOB_ID_SECRET: z.string().min(32).optional(),
  /** How often a worker looks for cancel requests of the jobs it runs (one Redis round trip for all of them). */
  CANCEL_POLL_MS: z.coerce.number().int().min(20).max(10_000).default(250),
  MODEL_CACHE_SIZE: z.coerce.number().int().min(1).default(8),
  /**
   * And at most this many bytes of loaded models per process (their ONNX or tfjs files' sizes, about
   * what a CPU session holds; the least recently used released beyond it; one larger model is kept
   * alone). 2 GiB.
   */
  MODEL_CACHE_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(2 * 1024 ** 3),
  /**
   * Versions whose metadata each process keeps in memory (LRU; invalidated over Redis pub/sub when
   * a version gains an artifact or a model is removed), so a predict reads no metadata.json; 0: off.
   */
  VERSION_META_CACHE_SIZE: z.coerce.number().int().min(0).max(1_000_000).default(1000),
  /**
   * Online predict (serve replicas, apps/serve): rows per engine call of a model version's dynamic
   * batcher. Concurrent requests coalesce up to this many rows; a larger request runs alone.
   */
  SERVE_MAX_BATCH_SIZE: z.coerce.number().int().min(1).max(65_536).default(64),
  /** How long the first waiting predict waits for others before a partial batch runs (ms; 0: no wait). */
  SERVE_MAX_DELAY_MS: z.coerce.number().min(0).max(10_000).default(2),
  /**
   * Rows waiting per model version on a replica (admission control): beyond it a predict is
   * refused with 429 and Retry-After rather than queued without bound.
   */
  SERVE_MAX_QUEUE: z.coerce.number().int().min(1).default(4096),
  /**
   * Batchers a replica keeps (one per tenant and model version asked for); beyond it the least
   * recently used idle ones are closed. They hold no model (MODEL_CACHE_SIZE bounds those).
   */
  SERVE_MAX_BATCHERS: z.coerce.number().int().min(1).default(256),
  /** A predict not answered within this many ms is answered 504 and its place in the queue freed. */
  SERVE_TIMEOUT_MS: z.coerce.number().int().min(10).max(600_000).default(10_000),
  /** Retry-After (seconds) of a 429 (queue full) or a 503 (no replica answers). */
  SERVE_RETRY_AFTER_SECONDS: z.coerce.number().int().min(1).max(3600).default(1),
  /**
   * Where the API runs online predicts: `auto` (default) forwards to the serve replicas registered
   * in Redis and runs them in the API itself only while none is registered (so a bare `npm start`
   * without replicas still predicts); `replicas` always forwards (503 with Retry-After when none
   * answers); `inline` runs them in the API, as before serve replicas existed.
   */
  SERVE_MODE: z.enum(['auto', 'replicas', 'inline']).default('auto'),
  /**
   * Predicts and explains one API process works on at once (the API's door; the replicas' client
   * door has no such gate); the others wait, unread, for a slot (503 with Retry-After after
   * SERVE_TIMEOUT_MS), so a burst of them does not queue the API's other routes behind it. 0: no gate.
   * Measured (bench/serve, binary rows, replicas at nice 0): a job read's p99 during a burst 18x
   * idle with no gate, 2.7-4.4x at 2 (439-695 predicts/s through the API), 2.2x at 1 (254/s); with
   * SERVE_NICE 10, 1.14-1.62x at 2 (344-454/s).
   */
  API_MAX_CONCURRENT_PREDICTS: z.coerce.number().int().min(0).default(2),
  /**
   * The nice value a serve replica runs at, every thread of it (Linux CPU priority, -20 to 19; 0:
   * as started; @tq/runtime runAtNice). Where it shares cores with the API in one cgroup (`npm
   * start`), a burst of predicts then takes the CPU the API does not use rather than the API's:
   * measured (bench/serve, when only its main thread was set), a job read's p99 during
   * a burst 1.87-2.54x idle at 0 (nine runs), 0.75-1.13x at 10 (five), replica throughput within
   * the runs' spread. Between containers (cgroups) or hosts it changes nothing. A negative value
   * needs CAP_SYS_NICE (else logged, kept).
   */
  SERVE_NICE: z.coerce.number().int().min(-20).max(19).default(10),
  /** Port of a serve replica's HTTP server (0: a free port, logged and registered). */
  SERVE_PORT: z.coerce.number().int().min(0).max(65535).default(3100),
  /**
   * The URL the API reaches this replica at (registered in Redis); http://HOST:port when unset.
   * In compose/k8s set it to the container's address (its hostname), since HOST may be 0.0.0.0.
   */
  SERVE_ADVERTISE_URL: z.string().url().optional(),
  /** How long a replica's registration lives without a heartbeat (it refreshes it every third of this). */
  SERVE_REGISTRATION_TTL_MS: z.coerce.number().int().min(300).max(600_000).default(5_000),
  /** onnxruntime providers, e.g. "cuda,cpu"; CUDA when its provider library is installed, else cpu, when unset. */
  ORT_EXECUTION_PROVIDERS: z.string().optional(),
  /** onnxruntime threads per session; 0 lets onnxruntime choose (one per core). */
  ORT_INTRA_OP_THREADS: z.coerce.number().int().min(0).max(256).default(0),
  /** on: onnxruntime's threads spin between runs (its own default); off: they sleep. Unset: ortAllowSpinning. */
  ORT_ALLOW_SPINNING: z.enum(['on', 'off']).optional(),
  /**
   * Budgets checked at submission (and by the worker, with the same function): a request over one
   * is refused with 413 naming the field, the figure and the variable. Generous: the largest
   * model the docs train (a small CNN on MNIST) has ~100k parameters; 50M float32 parameters are
   * 200 MB of weights (a tenth of a 2 GB worker), several times that while training with Adam.
   */
  MAX_MODEL_PARAMS: z.coerce.number().int().positive().default(50_000_000),
  /** Training work: dataset rows × epochs (1e9: MNIST's 10k rows for 100k epochs). */
  MAX_TRAIN_WORK: z.coerce.number().int().positive().default(1_000_000_000),
  /** Inline inference: rows, and numbers in all rows (10M float32 = 40 MB). */
  MAX_INFER_INSTANCES: z.coerce.number().int().positive().default(100_000),
  MAX_INFER_VALUES: z.coerce.number().int().positive().default(10_000_000),
  /**
   * POST .../explain: rows × steps × features a request may cost (413 above it). Each row is one
   * forward and backward pass over steps + 1 points, on a serve replica (in the API when none is
   * registered), holding that process's event loop meanwhile; 10M is ~200 MNIST rows at 64 steps, a
   * few seconds of compute, within the forward's bound (SERVE_TIMEOUT_MS).
   */
  MAX_EXPLAIN_VALUES: z.coerce.number().int().positive().default(10_000_000),
  /**
   * Classes of a classification (the label's distinct values): the output layer and every one-hot
   * label row are this wide. Checked at submission from the dataset's profile and by the worker
   * before it builds the model. At most 1,000: the profile counts distinct values exactly up to
   * there (a label with more fails its profile, naming "label"); set lower to tighten.
   */
  MAX_CLASSES: z.coerce.number().int().min(2).max(1_000).default(1_000),
  /**
   * Rows per shard of a table's infer job: profiling records where every this-many-th CSV row starts
   * (a dataset keeps the figure it was profiled with), and each shard is a child job reading only
   * its rows. A killed worker costs at most one shard's rows.
   */
  INFER_SHARD_ROWS: z.coerce.number().int().min(1).default(50_000),
  /** Rows of a table that may fail before its infer job fails (a request's maxErrors overrides it). */
  INFER_MAX_ERRORS: z.coerce.number().int().min(0).default(1_000),
  /**
   * Largest JSON request body of POST /v1/jobs/infer (inline instances; predicts take
   * MAX_PREDICT_BODY_BYTES, every other route MAX_SMALL_JSON_BODY_BYTES). Sized so the budgets above
   * fire first: MAX_INFER_VALUES numbers written as JSON take ~90 MB, so the default is 128 MiB.
   */
  MAX_JSON_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(128 * 1024 * 1024),
  /**
   * Largest JSON body of an online predict (the API's and the serve replicas' predict routes):
   * 16 MiB, some 1.5 million numbers. An online request waits in a batch and is parsed on the
   * serving process's event loop; more rows than this go to an infer job (MAX_JSON_BODY_BYTES).
   */
  MAX_PREDICT_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
  /**
   * Largest JSON body of every other route (train, compress, and any small JSON route): those bodies
   * are a few KB, so a client cannot make the API buffer and parse megabytes where none are needed.
   */
  /**
   * Requests one API replica holds at once (/health aside), and the JSON bodies they may be reading
   * and parsing, in bytes (a body weighs its Content-Length): beyond either, 503 with Retry-After
   * before the body is read, so that many clients at once (10,000 connections) cannot grow the
   * API's memory past these. 512 MiB: four bodies of the largest route's default limit at once.
   */
  MAX_INFLIGHT_REQUESTS: z.coerce.number().int().min(1).default(1024),
  MAX_INFLIGHT_JSON_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(512 * 1024 * 1024),
  MAX_SMALL_JSON_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  /**
   * Cross-origin requests from browsers: off when unset (no Access-Control-* header at all). A
   * comma-separated list of exact origins ("https://app.example.com,http://localhost:5173") allows those only.
   */
  CORS_ORIGINS: z
    .string()
    .transform((s, ctx) => {
      const origins = s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      // An origin as browsers send it: scheme, host, optional port; no path, no wildcard.
      for (const origin of origins)
        if (!/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$|^https?:\/\/\[[0-9A-Fa-f:]+\](:\d{1,5})?$/.test(origin))
          ctx.addIssue({ code: 'custom', message: `"${origin}" is not an origin (scheme://host[:port])` });
      return origins;
    })
    .optional(),
  /**
   * Where bytes live: `local` (ARTIFACT_DIR, the embedded default) or `s3` (S3_BUCKET, any
   * S3-compatible server at S3_ENDPOINT). Credentials: the SDK's default chain unless both keys are set.
   */
  BLOB_STORE: z.enum(['local', 's3']).default('local'),
  S3_BUCKET: z.string().min(1).optional(),
  /** Put before every key (e.g. "tq/"), to share a bucket. */
  S3_PREFIX: z.string().default(''),
  S3_ENDPOINT: z.string().url().optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  /** Path-style URLs (endpoint/bucket/key): MinIO and most S3-compatible servers need them. */
  S3_FORCE_PATH_STYLE: z.stringbool().default(false),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  /**
   * With BLOB_STORE=s3 and > 0: model artifacts and job outputs are answered with a 302 to a
   * presigned GET valid this long, so the bytes go from the bucket to the client, not through the
   * API. 0 (the default) streams them through the API: clients need not reach the bucket.
   */
  DOWNLOAD_REDIRECT_SECONDS: z.coerce.number().int().min(0).max(604_800).default(0),
  /**
   * `on` (the default): every route but /health needs an API key (`Authorization: Bearer`).
   * `off`: no keys, every caller is an admin of the default tenant: for a loopback-only dev setup,
   * so it is refused unless HOST is a loopback address.
   */
  AUTH: z.enum(['on', 'off']).default('on'),
  /**
   * An admin key given by configuration (compose, CI, scripts), accepted besides the stored keys
   * and never stored; 32 to 256 printable characters (`openssl rand -base64 32`).
   */
  TQ_ADMIN_KEY: z
    .string()
    .regex(/^[\x21-\x7e]{32,256}$/, '32 to 256 printable ASCII characters, no spaces')
    .optional(),
  /**
   * How long an API replica trusts a stored key it has checked. A revoke reaches every replica at
   * once (Redis pub/sub); this bounds how long a replica that missed the message still accepts it.
   */
  AUTH_CACHE_SECONDS: z.coerce.number().int().min(0).max(300).default(30),
  /**
   * How long the audit log (every state-changing request and every auth failure, a Redis stream)
   * keeps an entry: each write trims the entries older than this, and GET /v1/audit never shows them.
   */
  AUDIT_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
  /**
   * Encryption at rest of every stored object (models, datasets, outputs, checkpoints, secrets):
   * "id:base64key" comma separated, each key 32 bytes (`openssl rand -base64 32`), AES-256-GCM.
   * Unset (the default): objects are stored as they are. Every listed key can read; keep a
   * rotated-out key listed until `node dist/tools/reencrypt-store.js` has rewritten its objects.
   * With it set, downloads are streamed decrypted through the API (never a presigned redirect).
   */
  ENCRYPTION_KEYS: encryptionKeys.optional(),
  /** The id of ENCRYPTION_KEYS that new objects are sealed with (rotation: list a new key and name it here); the first listed when unset. */
  ENCRYPTION_KEY_ID: z.string().regex(KEY_ID_PATTERN, 'a key id of ENCRYPTION_KEYS').optional(),
  /**
   * With ENCRYPTION_KEYS set, an object without the encryption header (written before encryption
   * was turned on, or planted) is refused as an integrity failure. true reads such objects as they
   * are, for a migration, until the re-encryption tool has rewritten them. Default false.
   */
  ENCRYPTION_READ_PLAINTEXT: z.stringbool().default(false),
  /**
   * Per-tenant quotas (docs/security.md, "Quotas and fair share"): the defaults of every tenant,
   * which an admin overrides per tenant (PUT /v1/tenants/:tenant/quotas). Over one: 429 with
   * Retry-After naming the quota. Queued: jobs submitted and not finished (waiting or running).
   */
  TENANT_MAX_QUEUED_JOBS: z.coerce.number().int().min(0).default(10_000),
  /** Jobs of one tenant running at once over all workers; a job over it waits without using an attempt. */
  TENANT_MAX_ACTIVE_JOBS: z.coerce.number().int().min(0).default(32),
  /** Bytes under the tenant's prefix in the store (tenants/<tenant>/), checked before uploads and model-writing jobs. */
  TENANT_MAX_STORED_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(100 * 1024 ** 3),
  /**
   * Requests per second of one tenant over all API replicas, and the burst it may send at once
   * (a token bucket in each replica's memory holding its even share: the load balancer spreads
   * requests over the replicas). /health is exempt.
   */
  TENANT_MAX_REQUESTS_PER_SECOND: z.coerce.number().min(0.01).default(1000),
  TENANT_REQUEST_BURST: z.coerce.number().int().min(1).default(2000),
  /**
   * How long an API replica's announcement lives without a heartbeat (it refreshes it every third
   * of this): the replicas count each other by it to share the tenants' request rates, and a
   * replica that died is counted that long (the others allow a little less meanwhile).
   */
  API_REPLICA_TTL_MS: z.coerce.number().int().min(300).max(600_000).default(10_000),
  /** How long an API replica trusts a tenant's quota overrides and its stored-bytes figure before reading them again. */
  QUOTA_CACHE_SECONDS: z.coerce.number().int().min(0).max(300).default(5),
  /** A job whose tenant is at TENANT_MAX_ACTIVE_JOBS goes back to the queue for this long (not a failed attempt). */
  TENANT_ACTIVE_RETRY_MS: z.coerce.number().int().min(50).max(600_000).default(1000),
  /**
   * `on`: a tenant's job waits behind at most one job of each other tenant with jobs waiting in
   * its queue (per-tenant priority, round robin). `off`: first in, first out.
   */
  FAIR_SHARE: z.enum(['on', 'off']).default('on'),
  LOG_LEVEL: z.enum(['error', 'warn', 'log', 'debug', 'verbose']).default('log'),
  LOG_JSON: z.stringbool().default(false),
});

/** 127.0.0.0/8, ::1 and localhost: where AUTH=off may listen. */
export const isLoopbackHost = (host: string): boolean =>
  host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);

export const configSchema = configFields.superRefine((c, ctx) => {
  if (c.AUTH === 'off' && !isLoopbackHost(c.HOST))
    ctx.addIssue({
      code: 'custom',
      path: ['AUTH'],
      message: `"off" is only allowed on a loopback HOST (127.0.0.1, ::1, localhost), not "${c.HOST}": anyone who reaches the port would be an admin`,
    });
  if (c.ENCRYPTION_KEY_ID !== undefined && !c.ENCRYPTION_KEYS?.some((k) => k.id === c.ENCRYPTION_KEY_ID))
    ctx.addIssue({
      code: 'custom',
      path: ['ENCRYPTION_KEY_ID'],
      message: c.ENCRYPTION_KEYS
        ? `"${c.ENCRYPTION_KEY_ID}" is not an id of ENCRYPTION_KEYS (${c.ENCRYPTION_KEYS.map((k) => k.id).join(', ')})`
        : 'needs ENCRYPTION_KEYS, which lists the key it names',
    });
  if (c.REDIS_CLUSTER_NODES && !hasHashTag(c.QUEUE_PREFIX))
    ctx.addIssue({
      code: 'custom',
      path: ['QUEUE_PREFIX'],
      message:
        `"${c.QUEUE_PREFIX}" has no hash tag, which REDIS_CLUSTER_NODES needs: ` +
        `use e.g. "{${c.QUEUE_PREFIX}}" (BullMQ keeps all keys of a queue in one slot)`,
    });
});
export type AppConfig = z.infer<typeof configSchema>;

/**
 * Whether onnxruntime's pool threads spin between runs, for a process of `role`: ORT_ALLOW_SPINNING
 * when set, else on in a worker and off where HTTP shares the process (the API's inline predicts, a
 * serve replica). Measured with bench/serve (BENCH_ORT_SPINNING; five runs off, three on): binary
 * rows by wrk, the batching replica of the MLP 8,800-13,100/s off against 8,900-10,300/s on, its
 * gain over batch-1 2.87-3.54x against 2.34-2.54x; through the API 443-709 JSON predicts/s
 * against 251-374/s (a spinning replica's threads took the API's CPU). A worker's back-to-back
 * batches run faster spinning (bench/infer-speed, default threads, one run each: the engine
 * 0.82-0.89x bare onnxruntime off, 1.00x on).
 */
export function ortAllowSpinning(
  config: Pick<AppConfig, 'ORT_ALLOW_SPINNING'>,
  role: 'api' | 'serve' | 'worker',
): boolean {
  return config.ORT_ALLOW_SPINNING ? config.ORT_ALLOW_SPINNING === 'on' : role === 'worker';
}
