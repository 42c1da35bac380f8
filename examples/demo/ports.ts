// Free TCP ports on 127.0.0.1: the preferred one when nothing listens there, another free one otherwise.
import { createServer, type AddressInfo } from 'node:net';

/** `preferred` 0 (the default) means any free port. */
export async function freePort(preferred = 0, taken: number[] = []): Promise<number> {
  if (preferred !== 0 && !taken.includes(preferred) && (await canListen(preferred)) !== undefined) return preferred;
  for (;;) {
    const port = await canListen(0);
    if (port !== undefined && !taken.includes(port)) return port;
  }
}

function canListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}
