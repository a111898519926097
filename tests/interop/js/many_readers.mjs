#!/usr/bin/env node
// Many members in one process, each a device like Element's (matrix-js-sdk
// with Rust crypto, "exclude insecure devices", cross-signed by its owner),
// all joined to one encrypted room: how many of them decrypt a message.
//
//   HEARTH_JS_USERS='[["@a:server","password"], ...]' node many_readers.mjs \
//     --homeserver URL --room '!roomid:server' --expect-from '@bot:server' \
//     --body pong --timeout 180
//
// Prints {"ready": true, "members": N} once every member is set up and in
// the room; then waits for a message from --expect-from whose body is
// --body and prints one last line: how many members decrypted it, and the
// failures of those that could not (by member). Exit status 0 when all did.

import { parseArgs } from "node:util";

import { bootstrapIdentity, loadSdk, newDevice, quietLogger } from "./common.mjs";

const { values: args } = parseArgs({
    options: {
        homeserver: { type: "string" },
        room: { type: "string" },
        "expect-from": { type: "string" },
        body: { type: "string", default: "pong" },
        timeout: { type: "string", default: "180" },
    },
});
// Credentials from the environment: argv is visible to every local user.
const users = JSON.parse(process.env.HEARTH_JS_USERS ?? "[]");
if (!users.length || !args.homeserver || !args.room || !args["expect-from"]) {
    process.stderr.write("many_readers: --homeserver, --room, --expect-from and HEARTH_JS_USERS are required\n");
    process.exit(2);
}

const logger = quietLogger();

const { sdk, cryptoApi } = await loadSdk();
const { OnlySignedDevicesIsolationMode } = cryptoApi;

const deadline = Date.now() + Number(args.timeout) * 1000;
const clients = [];
const outcome = new Map(); // user → "decrypted" | failure reason

function finish(extra) {
    const decrypted = [...outcome.values()].filter((v) => v === "decrypted").length;
    const failures = Object.fromEntries([...outcome].filter(([, v]) => v !== "decrypted"));
    const ok = decrypted === users.length;
    process.stdout.write(JSON.stringify({ ok, members: users.length, decrypted, failures, ...extra }) + "\n");
    for (const c of clients) c.stopClient();
    process.exit(ok ? 0 : 1);
}
setTimeout(() => finish({ reason: `timeout after ${args.timeout}s` }), Number(args.timeout) * 1000);

async function until(predicate, what) {
    while (!(await predicate())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

// A homeserver under a crowd answers 429 (Synapse limits joins into one
// room, and logins): wait as long as it asks, as Element does, and try again.
async function patiently(what, request) {
    for (;;) {
        try {
            return await request();
        } catch (err) {
            if (err?.httpStatus !== 429 || Date.now() > deadline) throw new Error(`${what}: ${err}`);
            const wait = Number(err?.data?.retry_after_ms ?? 1000);
            await new Promise((r) => setTimeout(r, Math.min(Math.max(wait, 100), 10000)));
        }
    }
}

async function member(userId, password) {
    const { client } = await newDevice(
        sdk, logger, args.homeserver, userId, password, "hearth reader (js-sdk)", patiently,
    );
    const crypto = client.getCrypto();
    crypto.setDeviceIsolationMode(new OnlySignedDevicesIsolationMode());
    // As Element's set-up does: an identity that signs this device.
    await bootstrapIdentity(crypto, userId, password);
    const watch = (event) => {
        if (event.getRoomId() !== args.room || event.getSender() !== args["expect-from"]) return;
        if (event.isDecryptionFailure()) {
            if (outcome.get(userId) !== "decrypted") outcome.set(userId, String(event.decryptionFailureReason));
            return;
        }
        if (event.isEncrypted() && event.getContent()?.body === args.body) outcome.set(userId, "decrypted");
    };
    client.on(sdk.MatrixEventEvent.Decrypted, watch);
    const prepared = new Promise((resolve) => client.on(sdk.ClientEvent.Sync, (s) => s === "PREPARED" && resolve()));
    await client.startClient({ initialSyncLimit: 1 });
    await prepared;
    await patiently("joining the room", () => client.joinRoom(args.room));
    await until(() => crypto.isEncryptionEnabledInRoom(args.room), "the room's encryption state");
    clients.push(client);
}

try {
    // A few at a time: set-up is mostly waiting on the homeserver.
    for (let i = 0; i < users.length; i += 5) {
        await Promise.all(users.slice(i, i + 5).map(([u, p]) => member(u, p)));
    }
    process.stdout.write(JSON.stringify({ ready: true, members: clients.length }) + "\n");
    const readyAt = Date.now();
    await until(() => outcome.size === users.length && [...outcome.values()].every((v) => v === "decrypted"), "every member to decrypt");
    finish({ read_ms: Date.now() - readyAt });
} catch (err) {
    finish({ reason: String(err?.message ?? err) });
}
