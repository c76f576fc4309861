import { createTestApp, TestApp } from './support/create-app';

describe('service basics', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it('GET /health reports the database up', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok', info: { database: { status: 'up' } } });
  });

  it('serves the OpenAPI UI at /docs and the document at /docs-json', async () => {
    const ui = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('swagger');
    const doc = await t.app.inject({ method: 'GET', url: '/docs-json' });
    expect(doc.json().paths['/health']).toBeDefined();
  });

  it('answers an unknown route with a JSON 404', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ statusCode: 404 });
  });
});

describe('error bodies', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  const submit = '/api/v1/task/submit';
  it.each([
    ['malformed JSON', { method: 'POST', url: submit, payload: '{"repo_url":', headers: { 'content-type': 'application/json' } }, 400],
    ['a validation error', { method: 'POST', url: submit, payload: { repo_url: 'https://example.com/r.git' } }, 400],
    ['a domain error', { method: 'GET', url: '/api/v1/task/00000000-0000-4000-8000-000000000000' }, 404],
  ] as const)('share one shape for %s, with the reason phrase as `error`', async (_name, req, status) => {
    const res = await t.app.inject(req as Parameters<typeof t.app.inject>[0]);
    expect(res.statusCode).toBe(status);
    const body = res.json();
    expect(body).toMatchObject({ statusCode: status, error: status === 400 ? 'Bad Request' : 'Not Found' });
    expect(typeof body.message).toBe('string');
    expect(body.message.length).toBeGreaterThan(0);
  });

  it.each(['application/x-www-form-urlencoded', 'text/plain'])('refuses a %s body with 415, asking for JSON', async (type) => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: 'repo_url=x', headers: { 'content-type': type } });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ error: 'Unsupported Media Type', message: expect.stringContaining('application/json') });
  });
});
