// Drives the chat page fanout serves on GET / in headless Chromium, as
// people would: several pages join rooms under names, chat, come late, and
// lose their network. Run by tests/browser.rs against a fanout started with
// --history-size; exits 0 only when every check passed.
//
//   node tests/browser/chat.mjs http://127.0.0.1:PORT/ [SCREENSHOT.png]
//
// CHROMIUM names the browser (default /usr/bin/chromium).

import { chromium } from "playwright-core";

const [base, screenshot] = process.argv.slice(2);
if (!base) {
  console.error("usage: node chat.mjs URL [SCREENSHOT]");
  process.exit(2);
}
const WAIT = 10_000;
const suffix = Math.random().toString(36).slice(2, 8);
const roomA = `a-${suffix}`;
const roomB = `b-${suffix}`;

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

/// A page of its own context (its own storage and network), joined to `room` as `name`.
async function joined(browser, name, room, viewport = { width: 1100, height: 800 }, prepare = async () => {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await prepare(page);
  page.sockets = [];
  page.on("websocket", (ws) => page.sockets.push(ws.url()));
  page.on("pageerror", (e) => console.error(`[${name}] page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && console.error(`[${name}] console: ${m.text()}`));
  await page.goto(base);
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel("Room").fill(room);
  await page.getByRole("button", { name: "Join" }).click();
  await page.locator("#status", { hasText: `Connected to ${room} as ${name}` }).waitFor({ timeout: WAIT });
  if (await page.getByRole("button", { name: "Join" }).isVisible()) throw new Error("the join form stays on screen");
  return { context, page, name };
}

async function members(page) {
  return page.locator("#members li").evaluateAll((items) => items.map((li) => li.firstChild.textContent));
}

async function waitForMembers(who, expected) {
  const want = [...expected].sort().join(",");
  await who.page.waitForFunction(
    (want) => [...document.querySelectorAll("#members li")].map((li) => li.firstChild.textContent).sort().join(",") === want,
    want,
    { timeout: WAIT },
  );
  check(true, `${who.name} lists ${want}`);
}

/// The lines shown: sender, time (ISO) and text, without dividers and notices.
async function lines(page) {
  return page.locator("#messages li.chat, #messages li.plain").evaluateAll((items) =>
    items.map((li) => ({
      who: li.querySelector(".who").textContent,
      time: li.querySelector("time")?.dateTime ?? "",
      text: li.querySelector(".text").textContent,
      state: li.querySelector(".state").textContent,
    })),
  );
}

async function waitForText(who, text) {
  await who.page
    .locator("#messages .text", { hasText: text })
    .first()
    .waitFor({ timeout: WAIT })
    .catch(() => {
      throw new Error(`${who.name} never showed ${JSON.stringify(text)}`);
    });
}

async function say(who, text) {
  await who.page.getByRole("textbox", { name: "Message" }).fill(text);
  await who.page.getByRole("button", { name: "Send" }).click();
  // Back from the server: named members get their own lines, in the room's order.
  await who.page.locator("#messages li.pending").first().waitFor({ state: "detached", timeout: WAIT });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  // Ada's sockets go through a route the test can cut under her page; while
  // `held` is set, her next connection waits for it before reaching fanout.
  const routes = [];
  let held = null;
  const cuttable = (page) =>
    page.routeWebSocket(/\/chat\//, async (ws) => {
      if (held) await held.promise;
      routes.push({ ws, server: ws.connectToServer() });
    });

  // Two people in room A see each other; a third in room B sees neither.
  const ada = await joined(browser, "Ada", roomA, undefined, cuttable);
  const bob = await joined(browser, "Bob", roomA, { width: 390, height: 844 }); // a phone
  const cleo = await joined(browser, "Cleo", roomB);
  await waitForMembers(ada, ["Ada", "Bob"]);
  await waitForMembers(bob, ["Ada", "Bob"]);
  await waitForMembers(cleo, ["Cleo"]);

  // Ada speaks; Bob shows it with her name and the time she sent it.
  const before = Date.now();
  await say(ada, "hello from Ada");
  await waitForText(bob, "hello from Ada");
  const [hello] = await lines(bob.page);
  check(hello.who === "Ada" && hello.text === "hello from Ada", "Bob shows Ada's line with her name");
  const sent = Date.parse(hello.time);
  check(sent >= before - 1000 && sent <= Date.now() + 1000, `the line carries its time (${hello.time})`);
  check((await bob.page.locator("#messages time").first().textContent()).trim() !== "", "the time is shown");

  // Markup in a message stays text.
  await say(bob, '<img src=x onerror="window.pwned=1"><b>bold</b>');
  await waitForText(ada, "<b>bold</b>");
  check((await ada.page.evaluate(() => window.pwned)) === undefined, "a message's markup is not run");
  check((await ada.page.locator("#messages img, #messages b").count()) === 0, "a message's markup is not parsed");

  // A raw client's text that is no chat line shows from an unknown sender.
  await cleo.page.evaluate(async (room) => {
    const ws = new WebSocket(`ws://${location.host}/chat/${room}`);
    await new Promise((resolve) => (ws.onmessage = resolve)); // its welcome
    ws.send("plain text from a raw client");
    await new Promise((resolve) => setTimeout(resolve, 200));
    ws.close();
  }, roomA);
  await waitForText(bob, "plain text from a raw client");
  const plain = (await lines(bob.page)).find((l) => l.text === "plain text from a raw client");
  check(plain.who === "unknown" && plain.time === "", "a plain text shows from an unknown sender");

  // Room B heard none of it.
  await cleo.page.waitForTimeout(300);
  check((await lines(cleo.page)).length === 0, "room B shows nothing of room A");

  // Dan comes later: the recent history, then live; the others see him arrive.
  const dan = await joined(browser, "Dan", roomA);
  await waitForText(dan, "plain text from a raw client");
  const history = (await lines(dan.page)).map((l) => l.text);
  check(
    JSON.stringify(history) ===
      JSON.stringify(["hello from Ada", '<img src=x onerror="window.pwned=1"><b>bold</b>', "plain text from a raw client"]),
    "Dan shows the room's recent history, in order",
  );
  check((await dan.page.locator("#messages .divider").count()) === 1, "and where it ends");
  check(dan.page.sockets[0].includes("history="), "the first join asks for history");
  await waitForMembers(dan, ["Ada", "Bob", "Dan"]);
  await waitForMembers(ada, ["Ada", "Bob", "Dan"]);

  // Bob's network goes; three lines are said while he is away.
  await bob.context.setOffline(true);
  await bob.page.locator("#status", { hasText: "Offline" }).waitFor({ timeout: WAIT });
  check(true, "Bob's page notices it is offline and drops its socket");
  await say(ada, "missed 1");
  await say(dan, "missed 2");
  await say(ada, "missed 3");
  await waitForText(dan, "missed 3");
  check(!(await bob.page.locator("#messages .text", { hasText: "missed" }).count()), "Bob got none of them yet");

  // Back online: his page reconnects from where it was and shows each once.
  await bob.context.setOffline(false);
  await waitForText(bob, "missed 3");
  await bob.page.locator("#status", { hasText: "Connected" }).waitFor({ timeout: WAIT });
  const again = bob.page.sockets[bob.page.sockets.length - 1];
  check(/[?&]since=\d+&epoch=[0-9a-f]+/.test(again), `Bob reconnected with his position (${again})`);
  await say(ada, "after the drop");
  await waitForText(bob, "after the drop");
  const seen = (await lines(bob.page)).map((l) => l.text);
  const expected = [
    "hello from Ada",
    '<img src=x onerror="window.pwned=1"><b>bold</b>',
    "plain text from a raw client",
    "missed 1",
    "missed 2",
    "missed 3",
    "after the drop",
  ];
  check(JSON.stringify(seen) === JSON.stringify(expected), `Bob shows every line once, in order: ${JSON.stringify(seen)}`);
  check((await bob.page.locator("#messages .notice").count()) === 0, "and no warning of missing messages");
  check((await lines(bob.page)).every((l) => l.state === ""), "none of his lines is left pending");

  // Ada's socket dies under her page, with no word from the browser: her
  // page retries on its own, and two lines said meanwhile arrive once.
  held = {};
  held.promise = new Promise((resolve) => (held.release = resolve));
  const cut = routes[routes.length - 1];
  await cut.ws.close({ code: 4000, reason: "cut by the test" });
  await cut.server.close();
  await ada.page.waitForFunction(() => !document.getElementById("status").textContent.startsWith("Connected"), null, {
    timeout: WAIT,
  });
  await say(bob, "gap 1");
  await say(dan, "gap 2");
  await ada.page.waitForTimeout(300);
  check(!(await ada.page.locator("#messages .text", { hasText: "gap" }).count()), "Ada got none of them yet");
  held.release();
  held = null;
  await waitForText(ada, "gap 2");
  const retried = routes[routes.length - 1].ws.url();
  check(/[?&]since=\d+&epoch=[0-9a-f]+/.test(retried), `Ada's page retried with her position (${retried})`);
  const adaSaw = (await lines(ada.page)).map((l) => l.text);
  check(
    JSON.stringify(adaSaw) === JSON.stringify([...expected, "gap 1", "gap 2"]),
    `Ada shows every line once, in order: ${JSON.stringify(adaSaw)}`,
  );
  check((await ada.page.locator("#messages .notice").count()) === 0, "and no warning of missing messages");
  await waitForMembers(bob, ["Ada", "Bob", "Dan"]);

  // Dan leaves: the others drop him from their lists.
  await dan.context.close();
  await waitForMembers(ada, ["Ada", "Bob"]);
  await waitForMembers(bob, ["Ada", "Bob"]);

  // A phone-sized screen needs no sideways scrolling.
  const overflow = await bob.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, "the page fits a phone's width");
  check(await bob.page.getByRole("textbox", { name: "Message" }).isVisible(), "the message box is on screen on a phone");

  if (screenshot) {
    await bob.page.screenshot({ path: screenshot });
    console.log(`screenshot: ${screenshot}`);
  }
  console.log("all checks passed");
} finally {
  await browser.close();
}
