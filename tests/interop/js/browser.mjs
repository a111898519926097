// One headless Chromium for a whole test module, driven from Python over
// stdin/stdout, one JSON object per line each way (tests/browser/driver.py).
//
// Each request is {"id", "op", ...}; each reply {"id", "ok": true, ...} or
// {"id", "ok": false, "error"}. A session is a separate browser context (its
// own storage: one person's Element, signed in or not). Selectors are
// puppeteer's, so text and accessible names work as a person reads the page:
// "::-p-text(Accept)", "::-p-aria(Send message)".
//
//   node browser.mjs --chromium /usr/bin/chromium
import puppeteer from "puppeteer-core";
import readline from "node:readline";

const args = process.argv.slice(2);
const executablePath = args[args.indexOf("--chromium") + 1] || "/usr/bin/chromium";

const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    // As root on a machine with no outside network: no sandbox, and nothing
    // of Chromium's own that calls home (each refused connection is noise).
    args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ],
    defaultViewport: { width: 1280, height: 900 },
});

const sessions = new Map();

function page(id) {
    const found = sessions.get(id);
    if (!found) throw new Error(`no session ${id}`);
    return found.page;
}

const ops = {
    async open({ session, url }) {
        const context = await browser.createBrowserContext();
        const p = await context.newPage();
        const problems = [];
        p.on("pageerror", (e) => problems.push(String(e).slice(0, 300)));
        sessions.set(session, { context, page: p, problems });
        await p.goto(url, { waitUntil: "domcontentloaded" });
        return {};
    },
    async close({ session }) {
        const s = sessions.get(session);
        if (s) await s.context.close();
        sessions.delete(session);
        return {};
    },
    async goto({ session, url }) {
        await page(session).goto(url, { waitUntil: "domcontentloaded" });
        return {};
    },
    async wait({ session, selector, timeout, visible }) {
        await page(session).waitForSelector(selector, { timeout, visible: visible ?? true });
        return {};
    },
    async gone({ session, selector, timeout }) {
        await page(session).waitForSelector(selector, { timeout, hidden: true });
        return {};
    },
    async present({ session, selector }) {
        const handle = await page(session).$(selector);
        const shown = handle ? await handle.isVisible() : false;
        return { present: shown };
    },
    async click({ session, selector, timeout }) {
        const p = page(session);
        const handle = await p.waitForSelector(selector, { timeout, visible: true });
        await handle.click();
        return {};
    },
    async hover({ session, selector, timeout }) {
        const handle = await page(session).waitForSelector(selector, { timeout, visible: true });
        await handle.hover();
        return {};
    },
    async fill({ session, selector, text, timeout }) {
        const p = page(session);
        const handle = await p.waitForSelector(selector, { timeout, visible: true });
        await handle.click();
        await handle.type(text);
        return {};
    },
    async press({ session, key }) {
        await page(session).keyboard.press(key);
        return {};
    },
    async type({ session, text }) {
        await page(session).keyboard.type(text);
        return {};
    },
    async waitText({ session, selector, text, timeout }) {
        // Until an element matching *selector* shows *text* (innerText).
        await page(session).waitForFunction(
            (sel, want) => [...document.querySelectorAll(sel)].some((e) => e.innerText.includes(want)),
            { timeout, polling: 200 },
            selector,
            text,
        );
        return {};
    },
    async waitCount({ session, selector, count, timeout }) {
        // Until at least *count* elements match *selector*.
        await page(session).waitForFunction(
            (sel, n) => document.querySelectorAll(sel).length >= n,
            { timeout, polling: 200 },
            selector,
            count,
        );
        return {};
    },
    async texts({ session, selector }) {
        const found = await page(session).$$eval(selector, (els) => els.map((e) => e.innerText));
        return { texts: found };
    },
    async html({ session, selector }) {
        const found = await page(session).$$eval(selector, (els) => els.map((e) => e.innerHTML));
        return { html: found };
    },
    async screenshot({ session, path }) {
        await page(session).screenshot({ path, fullPage: false });
        return {};
    },
    async problems({ session }) {
        return { problems: sessions.get(session)?.problems ?? [] };
    },
};

const lines = readline.createInterface({ input: process.stdin });
console.log(JSON.stringify({ ready: true, version: await browser.version() }));
for await (const line of lines) {
    let request;
    try {
        request = JSON.parse(line);
    } catch {
        continue;
    }
    if (request.op === "quit") break;
    const run = ops[request.op];
    try {
        if (!run) throw new Error(`unknown op ${request.op}`);
        const out = await run(request);
        console.log(JSON.stringify({ id: request.id, ok: true, ...out }));
    } catch (e) {
        console.log(JSON.stringify({ id: request.id, ok: false, error: String(e?.message ?? e).slice(0, 2000) }));
    }
}
await browser.close();
