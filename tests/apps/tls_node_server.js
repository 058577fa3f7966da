// SPDX-License-Identifier: GPL-2.0
// A TLS server of Node.js, whose OpenSSL is linked into the node binary (Debian's build): the
// libssl probes cannot see its plaintext, and wsaudit must say so rather than stay silent.
//   node tls_node_server.js PORT KEY CERT
// Answers each line a client sends with the same line; prints "READY pid=N" once listening.
"use strict";
const fs = require("fs");
const tls = require("tls");

const [port, key, cert] = process.argv.slice(2);
const server = tls.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) },
	(sock) => {
		sock.on("data", (d) => sock.write(d));
		sock.on("error", () => {});
	});
server.listen(Number(port), "127.0.0.1", () => {
	process.stdout.write(`READY pid=${process.pid}\n`);
});
