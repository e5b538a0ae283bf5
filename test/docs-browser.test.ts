// /docs in a real browser with no network: the built binary serves the page
// and Scalar's script; every request that would leave localhost is blocked.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startBinary } from "./fixtures/binary";
import { buildBinary, hasTool, requireTools } from "./fixtures/build";
import { cleanup, tempDir } from "./helpers";

const CHROMIUM = "/usr/bin/chromium";
const present = hasTool("chromium");
if (!present && !requireTools) console.warn("skipping the /docs browser test: chromium is not installed (apt-get install chromium)");
const root = tempDir("modeld-docs-");
afterAll(() => cleanup({ root } as never));

test.skipIf(!present && !requireTools)("the Scalar page renders the API offline, served by the binary", async () => {
  const bin = join(root, "modeld");
  buildBinary(bin);
  const server = await startBinary(bin, { MODELD_DATA_DIR: join(root, "data"), XDG_CACHE_HOME: join(root, "cache") }, root);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const external: string[] = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === "127.0.0.1" || url.protocol === "data:") return route.continue();
      external.push(url.href);
      return route.abort();
    });
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => m.type() === "error" && pageErrors.push(m.text()));
    await page.goto(`${server.url}/docs`, { waitUntil: "load" });
    const wanted = ["modeld", "Load a model version (admin): answers 202 with a job", "Unload the active model (admin): answers 202 with a job", "/api/v1/models/{id}/load", "/api/v1/models/unload"];
    // The sidebar renders first; wait for the main content too.
    await page.waitForFunction((w) => w.every((s) => (globalThis as any).document.body.innerText.includes(s)), wanted, { timeout: 30_000 });
    const text = await page.locator("body").innerText();
    for (const w of wanted) expect(text).toContain(w);
    mkdirSync(join(import.meta.dir, "../test-artifacts"), { recursive: true });
    await page.screenshot({ path: join(import.meta.dir, "../test-artifacts/docs.png"), fullPage: false });
    // Nothing the page needs lives off the host, and it asks for nothing off the host.
    expect(external).toEqual([]);
    expect(pageErrors).toEqual([]);
  } finally {
    await browser.close();
    await server.stop();
  }
}, 120_000);
