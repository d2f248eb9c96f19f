import { S3rverFront } from './s3rver-front';

/**
 * The child process S3TestServer forks: s3rver behind its front, answering the parent's questions
 * over IPC. Arguments: the bucket to create.
 */
export type S3rverRequest =
  | { id: number; op: 'bytesReceived' | 'listRequests' | 'stop' }
  | { id: number; op: 'conditionalWrites'; value: boolean };
export type S3rverReply = { ready: string } | { id: number; value: number | null };

async function main(): Promise<void> {
  const front = await S3rverFront.start(process.argv[2] ?? 'tq-test');
  const reply = (message: S3rverReply) => process.send?.(message);
  process.on('message', (m: S3rverRequest) => {
    switch (m.op) {
      case 'bytesReceived':
        return reply({ id: m.id, value: front.bytesReceived() });
      case 'listRequests':
        return reply({ id: m.id, value: front.listRequests });
      case 'conditionalWrites':
        front.conditionalWrites = m.value;
        return reply({ id: m.id, value: null });
      case 'stop':
        void front.stop().then(() => {
          reply({ id: m.id, value: null });
          process.disconnect();
        });
    }
  });
  // The parent died without a stop: go too.
  process.on('disconnect', () => void front.stop().finally(() => process.exit(0)));
  reply({ ready: front.endpoint });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
