/**
 * The demo in a real browser: headless Chromium (Debian's `chromium`) driven
 * by playwright-core, against the demo started on a free port on
 * `DATABASE_URL`, each test on its own schema.
 *
 * ```sh
 * deno task test:browser                       # the demo on Deno
 * DEMO_RUNTIME=node deno task test:browser     # the demo on Node, from the built npm package
 * ```
 *
 * A Deno script (it starts the demo with `Deno.Command`); the pages it
 * drives are the same whichever runtime serves them. It saves a screenshot
 * of the sessions page under `.tmp/browser/` and prints its path. No sleeps:
 * every wait is on a page, a process or a promise.
 *
 * Named `*.browser.ts`, not `*_test.ts`, so that `deno test tests/` (which
 * needs no browser) leaves it out; `deno task test:browser` names it.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { type Browser, chromium, type Page } from "playwright-core";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SCREENSHOT = `${ROOT}.tmp/browser/sessions.png`;
/** A name a browser would run as markup if the demo did not escape it (32 of the 40 characters allowed). */
const HOSTILE_NAME = "Ada <img src=x onerror=alert(1)>";
const START_DEADLINE_MS = 60_000;

/** How the demo is started: on Deno from the source, or on Node from the built package. */
function demoCommand(): string[] {
  if (process.env.DEMO_RUNTIME === "node") {
    return ["node", `${ROOT}.tmp/demo-node/main.cjs`];
  }
  return [process.execPath, "run", "-A", `${ROOT}scripts/demo/deno_main.ts`];
}

/** A running demo. */
interface Demo {
  url: string;
  /** Sends SIGTERM and resolves to the exit code once the process has gone. */
  stop(): Promise<number | null>;
}

/**
 * Starts the demo on a free port and resolves once it prints its URL.
 * `Deno.Command`, not `node:child_process`: Deno 2.9's `child_process` reports
 * a child that handled SIGTERM and exited 0 as killed by the signal.
 */
function startDemo(schema: string): Promise<Demo> {
  const [command, ...args] = demoCommand();
  const child = new Deno.Command(command, {
    args: [...args, "--port", "0", "--schema", schema],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let running = true;
  const exited = child.status.then((status) => {
    running = false;
    return status.signal === null ? status.code : null;
  });
  const stop = async (): Promise<number | null> => {
    if (running) child.kill("SIGTERM");
    return await exited;
  };
  return new Promise<Demo>((resolve, reject) => {
    const deadline = setTimeout(() => {
      reject(new Error(`the demo printed no URL in ${START_DEADLINE_MS} ms`));
      stop();
    }, START_DEADLINE_MS);
    exited.then((code) => {
      clearTimeout(deadline);
      reject(new Error(`the demo exited (code ${code}) before printing a URL`));
    });
    (async () => {
      const lines = child.stdout.pipeThrough(new TextDecoderStream())
        .pipeThrough(splitLines());
      for await (const line of lines) {
        console.log(`  | ${line}`);
        const url = /listening on (http:\/\/\S+)/.exec(line)?.[1];
        if (url) {
          clearTimeout(deadline);
          resolve({ url, stop });
        }
      }
    })();
  });
}

function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) controller.enqueue(line);
    },
    flush(controller) {
      if (rest) controller.enqueue(rest);
    },
  });
}

/** Runs `fn` with a fresh schema, a browser, and the demo on that schema; cleans up after. */
async function withDemo(
  fn: (context: {
    browser: Browser;
    schema: string;
    start(): Promise<Demo>;
  }) => Promise<void>,
): Promise<void> {
  assert.ok(
    existsSync(CHROMIUM),
    `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`,
  );
  const url = process.env.DATABASE_URL;
  assert.ok(url, "DATABASE_URL is not set: run `deno task test:browser`");
  const sql = postgres(url, { onnotice: () => {}, max: 1 });
  const schema = `demo_browser_${process.pid}_${Date.now().toString(36)}`;
  const demos: Demo[] = [];
  let browser: Browser | undefined;
  try {
    // Playwright gives every launch a fresh, temporary user-data-dir and removes it on close.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    await fn({
      browser,
      schema,
      async start() {
        const demo = await startDemo(schema);
        demos.push(demo);
        return demo;
      },
    });
  } finally {
    await Promise.all(demos.map((demo) => demo.stop()));
    await browser?.close();
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql.end();
  }
}

/** Opens a page in a new browser context (its own cookies), failing on any dialog. */
async function newVisitor(browser: Browser): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on("dialog", (dialog) => {
    throw new Error(`the page opened a dialog: ${dialog.message()}`);
  });
  return page;
}

async function text(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).textContent())?.trim() ?? "";
}

/** Signs in on the counter page the browser is on. */
async function signIn(page: Page, url: string, name: string): Promise<void> {
  await page.fill('input[name="name"]', name);
  await page.click('button:text("Sign in")');
  await page.waitForURL(url);
  assert.equal(await text(page, "#name"), name, "the name, shown as text");
}

async function sessionsOf(page: Page, name: string): Promise<number> {
  return await page.locator("#sessions tbody tr").filter({ hasText: name })
    .count();
}

test("the counter rises; two browsers with one name see two sessions, kept across a restart; sign out everywhere ends both", async () => {
  await withDemo(async ({ browser, start }) => {
    let demo = await start();
    const first = await newVisitor(browser);
    await first.goto(demo.url);
    assert.equal(await text(first, "#visits"), "1", "a first visit counts 1");
    assert.equal(await text(first, "#who"), "not signed in");

    await signIn(first, demo.url, HOSTILE_NAME);
    assert.equal(await first.locator("img").count(), 0, "no markup injected");
    assert.equal(await text(first, "#visits"), "2", "sign-in keeps the count");
    await first.reload();
    assert.equal(await text(first, "#visits"), "3", "a reload counts");
    await first.reload();
    assert.equal(await text(first, "#visits"), "4", "every reload counts");
    assert.match(
      await text(first, "#expires"),
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/,
    );
    // maxLifetime: the session ends 8 hours after sign-in however active.
    const endsBy = Date.parse(
      (await first.locator("#ends-by").getAttribute("datetime")) ?? "",
    );
    assert.ok(
      Math.abs(endsBy - Date.now() - 8 * 3600_000) < 60_000,
      `ends by ${new Date(endsBy).toISOString()}`,
    );

    const second = await newVisitor(browser);
    await second.goto(demo.url);
    await signIn(second, demo.url, HOSTILE_NAME);
    assert.equal(
      await text(second, "#visits"),
      "2",
      "a new browser, its own count",
    );

    await first.goto(`${demo.url}sessions`);
    assert.equal(
      await sessionsOf(first, HOSTILE_NAME),
      2,
      "two sessions listed",
    );
    assert.equal(await text(first, "#mine"), "2");
    assert.equal(
      await first.locator("tr.current").count(),
      1,
      "one is this browser's",
    );

    // A restart on the same database: both sessions are still there (cookies ignore the port).
    assert.equal(await demo.stop(), 0, "the demo exits cleanly on SIGTERM");
    demo = await start();
    await first.goto(`${demo.url}sessions`);
    assert.equal(await text(first, "#who"), `signed in as ${HOSTILE_NAME}`);
    assert.equal(
      await sessionsOf(first, HOSTILE_NAME),
      2,
      "both survive a restart",
    );
    mkdirSync(`${ROOT}.tmp/browser`, { recursive: true });
    await first.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`screenshot of the sessions page: ${SCREENSHOT}`);

    await second.goto(`${demo.url}sessions`);
    await second.click('button:text("Sign out everywhere")');
    await second.waitForURL(demo.url);
    assert.equal(await text(second, "#who"), "not signed in");
    await second.locator('input[name="name"]').waitFor();

    await first.reload();
    assert.equal(
      await text(first, "#who"),
      "not signed in",
      "signed out here too",
    );
    assert.equal(await sessionsOf(first, HOSTILE_NAME), 0, "no session left");
    await first.goto(demo.url);
    await first.locator('input[name="name"]').waitFor();
    assert.equal(await text(first, "#visits"), "1", "a fresh session");
  });
});

test("sign out this session ends that browser's session only", async () => {
  await withDemo(async ({ browser, start }) => {
    const demo = await start();
    const name = "Grace";
    const first = await newVisitor(browser);
    const second = await newVisitor(browser);
    for (const page of [first, second]) {
      await page.goto(demo.url);
      await signIn(page, demo.url, name);
    }

    await first.goto(`${demo.url}sessions`);
    await first.locator("tr:not(.current)").filter({ hasText: name })
      .locator('button:text("Sign out this session")').click();
    await first.waitForURL(`${demo.url}sessions`);
    assert.equal(await text(first, "#mine"), "1", "one session left");
    assert.equal(
      await first.locator("tr.current").count(),
      1,
      "and it is this one",
    );

    await second.reload();
    assert.equal(
      await text(second, "#who"),
      "not signed in",
      "the other one is out",
    );
    await first.goto(demo.url);
    assert.equal(await text(first, "#name"), name, "this one is still in");
  });
});
