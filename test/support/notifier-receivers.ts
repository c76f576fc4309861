import { createServer, IncomingHttpHeaders } from 'node:http';
import { AddressInfo } from 'node:net';
import { simpleParser, ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/**
 * Real peers for the alert notifiers: an HTTP receiver that keeps each request's raw body and
 * headers (Slack, signed webhooks, failing endpoints) and a real SMTP server (the smtp-server
 * package) that requires AUTH and parses each message with mailparser. Both on 127.0.0.1:0.
 */

export interface ReceivedRequest {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
}

export interface HttpReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** What the next requests get: a status (and body), or 'hang' (never answered). */
  respond: { status: number; body: string } | 'hang';
  close(): Promise<void>;
}

export async function startHttpReceiver(respond: HttpReceiver['respond'] = { status: 200, body: 'ok' }): Promise<HttpReceiver> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      receiver.requests.push({ path: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') });
      const r = receiver.respond;
      if (r === 'hang') return;
      res.writeHead(r.status, { 'content-type': 'text/plain' }).end(r.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver: HttpReceiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: [],
    respond,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return receiver;
}

export interface SmtpMail {
  envelopeFrom: string;
  envelopeTo: string[];
  user: string | undefined;
  parsed: ParsedMail;
}

export interface RealSmtpServer {
  port: number;
  mails: SmtpMail[];
  close(): Promise<void>;
}

/** Plain SMTP (no STARTTLS offered) with AUTH PLAIN/LOGIN required, accepting only `user`/`password`. */
export async function startSmtpServer(user: string, password: string): Promise<RealSmtpServer> {
  const mails: SmtpMail[] = [];
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: false,
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === user && auth.password === password) cb(null, { user: auth.username });
      else cb(new Error('Invalid username or password'));
    },
    onData(stream, session, cb) {
      simpleParser(stream)
        .then((parsed) => {
          mails.push({
            envelopeFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            envelopeTo: session.envelope.rcptTo.map((r) => r.address),
            user: session.user as string | undefined,
            parsed,
          });
          cb();
        })
        .catch((err: Error) => cb(err));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.server.address() as AddressInfo).port,
    mails,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Polls `probe` until it returns a value other than undefined. */
export async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
