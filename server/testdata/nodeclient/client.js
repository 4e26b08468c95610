// A Node.js caller of Embedgate: proves a non-Go service can mint an embed
// token over mTLS with nothing but the .proto files and @grpc/grpc-js.
// server/node_client_test.go runs it; it also works by hand against `make run`.
//
// Inputs (environment):
//   EMBEDGATE_ADDR         host:port of the gRPC listener (e.g. 127.0.0.1:8443)
//   EMBEDGATE_CA           file: the CA that signed the server certificate (PEM)
//   EMBEDGATE_CERT         file: this caller's client certificate (PEM, SPIFFE ID URI SAN)
//   EMBEDGATE_KEY          file: its private key (PEM)
//   EMBEDGATE_REQUEST      a GenerateEmbedTokenRequest as JSON, proto field names
//                          (e.g. {"tenant":"acme","user":"alice","report_ids":["..."]});
//                          or pass it as the first command-line argument
//   EMBEDGATE_SERVER_NAME  the name to verify the server certificate against
//                          (optional; e.g. localhost)
//
// Output: one JSON line on stdout. Exit 0 with {"ok":true,"response":{...}},
// 1 on a gRPC error with {"ok":false,"code":7,"code_name":"PERMISSION_DENIED",
// "message":"...","error_info":{"reason":...,"domain":...,"metadata":{...}}},
// 2 when the client itself could not run (bad input).
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const repo = path.resolve(__dirname, '..', '..', '..'); // server/testdata/nodeclient -> repo root

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

// Protobuf wire-format reader, just enough to decode google.rpc.Status and
// google.rpc.ErrorInfo from the grpc-status-details-bin trailer without
// shipping their .proto files. Returns [fieldNumber, value] pairs; value is
// a Buffer for length-delimited fields, a Number for varints.
function fields(buf) {
  const out = [];
  let i = 0;
  const varint = () => {
    let n = 0, shift = 0, b;
    do { b = buf[i++]; n += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
    return n;
  };
  while (i < buf.length) {
    const key = varint(), field = Math.floor(key / 8), wire = key & 7;
    if (wire === 0) out.push([field, varint()]);
    else if (wire === 2) { const len = varint(); out.push([field, buf.subarray(i, i + len)]); i += len; }
    else if (wire === 1) i += 8; // fixed64: not used by these messages
    else if (wire === 5) i += 4; // fixed32: idem
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

// errorInfo finds the google.rpc.ErrorInfo among google.rpc.Status.details
// (field 3, each a google.protobuf.Any: 1 type_url, 2 value).
function errorInfo(statusBin) {
  for (const [f, any] of fields(statusBin)) {
    if (f !== 3) continue;
    const a = Object.fromEntries(fields(any));
    if (String(a[1]) !== 'type.googleapis.com/google.rpc.ErrorInfo') continue;
    const info = { reason: '', domain: '', metadata: {} }; // 1 reason, 2 domain, 3 map<string,string>
    for (const [g, v] of fields(a[2] || Buffer.alloc(0))) {
      if (g === 1) info.reason = String(v);
      else if (g === 2) info.domain = String(v);
      else if (g === 3) { const e = Object.fromEntries(fields(v)); info.metadata[String(e[1] || '')] = String(e[2] || ''); }
    }
    return info;
  }
  return null;
}

function main() {
  // The API, straight from the repository's .proto files. keepCase: fields
  // keep their proto names (report_ids, token_id); longs as strings so that
  // Timestamp seconds survive JSON.
  const def = protoLoader.loadSync('embedgate/v1/embed_token.proto', {
    includeDirs: [path.join(repo, 'proto'), path.join(repo, 'third_party', 'protovalidate')],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const { EmbedTokenService } = grpc.loadPackageDefinition(def).embedgate.v1;

  // mTLS: trust the CA, present our certificate (its URI SAN is our identity).
  const creds = grpc.credentials.createSsl(
    fs.readFileSync(env('EMBEDGATE_CA')),
    fs.readFileSync(env('EMBEDGATE_KEY')),
    fs.readFileSync(env('EMBEDGATE_CERT')),
  );
  const options = {};
  if (process.env.EMBEDGATE_SERVER_NAME) {
    options['grpc.ssl_target_name_override'] = process.env.EMBEDGATE_SERVER_NAME;
    options['grpc.default_authority'] = process.env.EMBEDGATE_SERVER_NAME;
  }
  const client = new EmbedTokenService(env('EMBEDGATE_ADDR'), creds, options);
  const request = JSON.parse(process.argv[2] || env('EMBEDGATE_REQUEST'));

  const deadline = new Date(Date.now() + 20000);
  client.GenerateEmbedToken(request, { deadline }, (err, response) => {
    client.close();
    if (!err) {
      console.log(JSON.stringify({ ok: true, response }));
      process.exitCode = 0;
      return;
    }
    const out = { ok: false, code: err.code, code_name: grpc.status[err.code], message: err.details };
    const bin = err.metadata && err.metadata.get('grpc-status-details-bin')[0];
    if (bin) {
      try { out.error_info = errorInfo(Buffer.from(bin)); } catch (e) { out.error_info_error = String(e); }
    }
    console.log(JSON.stringify(out));
    process.exitCode = 1;
  });
}

try {
  main();
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.message || e) }));
  process.exitCode = 2;
}
