// The application's side of a benchmark: eight clients running queries back to back, every query timed.
import pg from 'pg';

export const APP_CLIENTS = 8;

export interface Sample {
  start: number;
  end: number;
}

export interface AppTraffic {
  /** Stops the clients after their current query and returns every sample so far. */
  stop(): Sample[];
  done: Promise<void>;
}

/**
 * APP_CLIENTS clients, each running `query(client, n, index)` (its n-th query; `index` is the client's) and then
 * pausing 2 ms, until `stop`.
 */
export async function startAppTraffic(url: string, query: (client: pg.Client, n: number, index: number) => Promise<unknown>): Promise<AppTraffic> {
  const clients = await Promise.all(
    Array.from({ length: APP_CLIENTS }, async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    }),
  );
  const samples: Sample[] = [];
  let running = true;
  const loops = clients.map(async (client, index) => {
    for (let n = 0; running; n++) {
      const start = performance.now();
      await query(client, n, index);
      samples.push({ start, end: performance.now() });
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await client.end();
  });
  return {
    stop() {
      running = false;
      return samples;
    },
    done: Promise.all(loops).then(() => undefined),
  };
}
