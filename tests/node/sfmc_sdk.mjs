// Drives npm sfmc-sdk (the client behind Accenture's sfmc-devtools) against `authwatch simulate --tls`.
// Input: AUTHWATCH_SDK_INPUT = {"auth_url", "good": {client_id, client_secret, account_id}, "wrong_secret",
// "no_scope": {...}, "limited": {...}}. Output: one JSON object per case on stdout, then exit 0.
import SDK from 'sfmc-sdk';

const input = JSON.parse(process.env.AUTHWATCH_SDK_INPUT);
const options = { requestAttempts: 1, retryOnConnectionError: false };
const sdk = (c) => new SDK({ ...c, auth_url: input.auth_url }, options);

async function run(name, f) {
  try {
    const value = await f();
    return { case: name, ok: true, value };
  } catch (e) {
    return { case: name, ok: false, error: { message: e.message, code: e.code ?? null, status: e.response?.status ?? null } };
  }
}

const good = sdk(input.good);
const results = [];
results.push(
  await run('token_ok', async () => {
    const a = await good.auth.getAccessToken();
    return {
      token_type: a.token_type,
      expires_in: a.expires_in,
      scope: a.scope,
      rest_instance_url: a.rest_instance_url,
      soap_instance_url: a.soap_instance_url,
    };
  })
);
results.push(await run('token_context', () => good.rest.get('/platform/v1/tokenContext')));
results.push(
  await run('soap_retrieve', async () => {
    const r = await good.soap.retrieve('BusinessUnit', ['ID', 'Name'], {});
    return { status: r.OverallStatus, results: r.Results };
  })
);
results.push(await run('wrong_secret', () => sdk({ ...input.good, client_secret: input.wrong_secret }).auth.getAccessToken()));
results.push(await run('missing_scope', () => sdk(input.no_scope).rest.get('/data/v1/customobjectdata/key/orders/rowset')));
results.push(await run('rate_limited', () => sdk(input.limited).auth.getAccessToken()));
for (const r of results) {
  process.stdout.write(JSON.stringify(r) + '\n');
}
