// npm oauth2-mock-server as the token endpoint for authwatch's `provider = "oauth2"`.
// The mock checks client authentication the RFC 6749 way (Basic: base64, split at the first ':', then
// form-urldecode each half, §2.3.1; or client_id/client_secret in the form body) against AUTHWATCH_EXPECT_ID and
// AUTHWATCH_EXPECT_SECRET, and its hooks misbehave by path: /token (normal), /invalid_client/token,
// /invalid_scope/token, /server_error/token (hooks on beforeResponse), /slow/token (answers after 5 s) and
// /html/token (200 text/html). Prints {"port": N} once listening; runs until killed.
import http from 'node:http';
import { OAuth2Server } from 'oauth2-mock-server';

const expectId = process.env.AUTHWATCH_EXPECT_ID;
const expectSecret = process.env.AUTHWATCH_EXPECT_SECRET;
const oauth = new OAuth2Server();
await oauth.issuer.keys.generate('RS256');

const formDecode = (s) => decodeURIComponent(s.replace(/\+/g, ' '));

function clientCredentials(req) {
  const auth = req.headers.authorization || '';
  if (auth.toLowerCase().startsWith('basic ')) {
    const raw = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const i = raw.indexOf(':');
    if (i < 0) return null;
    try {
      return { how: 'basic', id: formDecode(raw.slice(0, i)), secret: formDecode(raw.slice(i + 1)) };
    } catch {
      return { how: 'basic', id: raw.slice(0, i), secret: '(not form-urlencoded)' };
    }
  }
  const body = req.body || {};
  return { how: 'body', id: body.client_id, secret: body.client_secret };
}

oauth.service.on('beforeResponse', (response, req) => {
  const mode = req.authwatchMode;
  const c = clientCredentials(req);
  process.stderr.write(`oauth2-mock-server: ${mode} ${c ? c.how : 'none'} id ok: ${c && c.id === expectId}\n`);
  if (mode === 'invalid_client' || !c || c.id !== expectId || c.secret !== expectSecret) {
    response.statusCode = 401;
    response.body = { error: 'invalid_client', error_description: 'Client authentication failed.' };
  } else if (mode === 'invalid_scope') {
    response.statusCode = 400;
    response.body = { error: 'invalid_scope', error_description: 'The requested scope is invalid, unknown, or malformed.' };
  } else if (mode === 'server_error') {
    response.statusCode = 500;
    response.body = { error: 'server_error', error_description: 'The authorization server encountered an unexpected condition.' };
  }
});

const handler = oauth.service.requestHandler;
const server = http.createServer((req, res) => {
  const m = /^\/(?:(\w+)\/)?token$/.exec(req.url || '');
  const mode = (m && m[1]) || 'normal';
  if (mode === 'html') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<html><body>Please sign in</body></html>');
    return;
  }
  const go = () => {
    req.url = '/token';
    req.authwatchMode = mode;
    handler(req, res);
  };
  if (mode === 'slow') setTimeout(go, 5000);
  else go();
});
server.listen(0, '127.0.0.1', () => {
  oauth.issuer.url = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
