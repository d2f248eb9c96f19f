import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort } from '../../tools/free-port';

/**
 * A redis-server of the bench's own on a loopback port, which the bench may kill -9 and restart
 * (never the shared one). `persist`: AOF on (a process kill loses nothing acknowledged: Redis writes
 * the AOF before it replies, fsync only matters for a machine crash); off: nothing on disk.
 */
export class PrivateRedis {
  private child?: ChildProcess;

  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly persist: boolean,
  ) {}

  static async start(dir: string, persist: boolean): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), dir, persist);
    await mkdir(dir, { recursive: true });
    await redis.restart();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port and folder: with persistence it reloads its AOF. */
  async restart(): Promise<void> {
    const persistence = this.persist ? ['--appendonly', 'yes', '--save', ''] : ['--appendonly', 'no', '--save', ''];
    const args = ['--bind', '127.0.0.1', '--port', String(this.port), '--dir', this.dir, ...persistence];
    this.child = spawn('redis-server', [...args, '--logfile', join(this.dir, 'redis.log')], { stdio: 'ignore' });
    for (let i = 0; i < 200; i++) {
      if (await this.answers()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`a private redis-server did not start on port ${this.port}; see ${join(this.dir, 'redis.log')}`);
  }

  /** kill -9: no shutdown save, clients see the connection drop. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((done) => {
      child.once('exit', () => done());
      child.kill('SIGKILL');
    });
  }

  stop(): Promise<void> {
    return this.kill9();
  }

  private async answers(): Promise<boolean> {
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  }
}
