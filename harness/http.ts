/** One bounded HTTP GET (no keep-alive), for the sidecar's admin server and the like. */
import http from 'node:http';

export interface HttpAnswer {
  status: number;
  body: string;
}

/** GET http://host:port/path; rejects when no answer comes within `timeoutMs`. Keeps at most 1 MB of the body. */
export function httpGet(host: string, port: number, path: string, timeoutMs = 1000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < 1_000_000) body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
