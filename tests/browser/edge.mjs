// A browser at the edge: headless Chromium, trusting only the test server's
// certificate (its public key pinned: headless Chromium takes no CA without an
// NSS database, and the pin checks the same chain of trust here), on a page of
// an allowed origin, opens wss:// sockets to fanout on another origin with a
// login token as a subprotocol; they chat with permessage-deflate agreed.
// Without a token, or from an origin not allowed, the upgrade is refused.
// Run by tests/browser.rs against a fanout started with --tls-cert,
// --auth-secret and --allowed-origin https://localhost:PORT; exits 0 only when
// every check passed.
//
//   node tests/browser/edge.mjs PORT CERT.pem TOKEN
//
// CHROMIUM names the browser (default /usr/bin/chromium).

import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [port, certFile, token] = process.argv.slice(2);
if (!token) {
  console.error("usage: node edge.mjs PORT CERT.pem TOKEN");
  process.exit(2);
}

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

// Chromium trusts this certificate's key, nothing else.
const spki = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: "spki", format: "der" });
const pin = createHash("sha256").update(spki).digest("base64");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", `--ignore-certificate-errors-spki-list=${pin}`],
});

/// Opens a socket from the page, waits for its first message (the welcome)
/// or its failure; gives what the browser saw.
function open(page, url, protocols) {
  return page.evaluate(
    ([url, protocols]) =>
      new Promise((resolve) => {
        const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
        const seen = [];
        window.sockets = window.sockets || [];
        window.sockets.push({ ws, seen });
        ws.onmessage = (e) => {
          seen.push(e.data);
          if (seen.length === 1) resolve({ opened: true, protocol: ws.protocol, extensions: ws.extensions, index: window.sockets.length - 1 });
        };
        ws.onclose = (e) => resolve({ opened: false, code: e.code });
      }),
    [url, protocols],
  );
}

try {
  const target = `wss://127.0.0.1:${port}/chat/edge-room`;
  const page = await (await browser.newContext()).newPage();
  // An allowed origin that is not the socket's: the page comes from localhost,
  // the sockets go to 127.0.0.1.
  const response = await page.goto(`https://localhost:${port}/healthz`);
  check(response.ok(), "the page of https://localhost loads over TLS with the pinned test certificate");

  const alice = await open(page, target, ["fanout.token", token]);
  check(alice.opened, "a socket with the token opens from the allowed origin");
  check(alice.protocol === "fanout.token", `the subprotocol confirmed is fanout.token (${alice.protocol})`);
  check(alice.extensions.startsWith("permessage-deflate"), `permessage-deflate is agreed (${alice.extensions})`);
  const bob = await open(page, target, ["fanout.token", token]);
  check(bob.opened, "a second socket opens");

  const line = "over wss, compressed both ways, from a browser on another origin; ".repeat(8);
  const got = await page.evaluate(
    ([from, to, line]) =>
      new Promise((resolve, reject) => {
        const receiver = window.sockets[to];
        receiver.ws.onmessage = (e) => resolve(e.data);
        setTimeout(() => reject(new Error("nothing arrived")), 10000);
        window.sockets[from].ws.send(line);
      }),
    [alice.index, bob.index, line],
  );
  check(got === line, "a long message sent compressed arrives whole on the other socket");

  const anonymous = await open(page, target, undefined);
  check(!anonymous.opened, `a socket without a token is refused before the upgrade (close ${anonymous.code})`);
  const forged = await open(page, target, ["fanout.token", token.slice(0, -4) + "AAAA"]);
  check(!forged.opened, "a socket with a forged token is refused");

  const elsewhere = await (await browser.newContext()).newPage();
  await elsewhere.goto(`https://127.0.0.1:${port}/healthz`);
  const foreign = await open(elsewhere, `wss://localhost:${port}/chat/edge-room`, ["fanout.token", token]);
  check(!foreign.opened, "a page of an origin not allowed is refused, valid token or not");

  console.log("all checks passed");
} finally {
  await browser.close();
}
