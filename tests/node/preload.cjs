// Loaded with `node --require ./preload.cjs`: the simulator's tenant host names resolve to loopback inside this
// process only (never /etc/hosts), and connections to them on 443 go to the simulator's port, as a TLS front
// would route them. Names and port come from AUTHWATCH_SIM_HOSTS (comma-separated) and AUTHWATCH_SIM_PORT.
'use strict';
const dns = require('node:dns');
const tls = require('node:tls');

const hosts = new Set((process.env.AUTHWATCH_SIM_HOSTS || '').split(',').filter(Boolean));
const port = Number(process.env.AUTHWATCH_SIM_PORT || 0);

const lookup = dns.lookup;
dns.lookup = function (hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  if (!hosts.has(hostname)) {
    return lookup.call(dns, hostname, options, callback);
  }
  const opts = typeof options === 'number' ? { family: options } : options || {};
  if (opts.all) {
    return process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }]);
  }
  return process.nextTick(callback, null, '127.0.0.1', 4);
};

const connect = tls.connect;
tls.connect = function (...args) {
  const options = args.find((a) => a && typeof a === 'object');
  const host = options && (options.servername || options.host);
  if (port && options && hosts.has(host) && (options.port === undefined || Number(options.port) === 443)) {
    options.port = port;
  }
  return connect.apply(tls, args);
};

// Debian bookworm's nodejs (18) has WebCrypto only as require('node:crypto').webcrypto; jose (oauth2-mock-server)
// wants the global.
if (!globalThis.crypto) {
  globalThis.crypto = require('node:crypto').webcrypto;
}
