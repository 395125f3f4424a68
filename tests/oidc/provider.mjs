// A real OpenID provider for the tests (npm `oidc-provider`, OpenID Certified), on a
// port of its own choosing on loopback. It prints "listening <issuer>" once ready, and
// exits when its standard input closes (the test that started it is gone).
//
// One confidential client, from the environment: OIDC_CLIENT_ID, OIDC_CLIENT_SECRET,
// OIDC_REDIRECT_URI. The development login form accepts any login name, which becomes
// the account: "someone@example.com" has that verified address; a name starting with
// "unverified." has an unverified one; "admin." / "helpdesk." put the person in the
// group "enroll-admins" / "enroll-helpdesk".
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(process.env.OIDC_PROVIDER_MODULES + '/');
const { default: Provider } = await import(require.resolve('oidc-provider'));

function claimsFor(login) {
  const groups = [];
  if (login.startsWith('admin.')) groups.push('enroll-admins');
  if (login.startsWith('helpdesk.')) groups.push('enroll-helpdesk');
  return {
    sub: login,
    email: login,
    email_verified: !login.startsWith('unverified.'),
    name: login,
    groups,
  };
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      redirect_uris: [process.env.OIDC_REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    async findAccount(ctx, id) {
      return { accountId: id, async claims() { return claimsFor(id); } };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    features: { devInteractions: { enabled: true } },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, AuthorizationCode: 60, IdToken: 600 },
    // Plain HTTP on loopback: cookies without the Secure flag.
    cookies: { keys: ['enroll-test-provider-cookie-key'] },
  });
  provider.proxy = false;
  server.on('request', provider.callback());
  process.stdout.write(`listening ${issuer}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
