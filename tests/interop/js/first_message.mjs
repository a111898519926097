#!/usr/bin/env node
// The floor for the bot's first message into a big room: a fresh device of
// Element's stack (matrix-js-sdk with Rust crypto, cross-signed by its
// owner, "exclude insecure devices", the same policy as the bot's) sends
// two messages into a room it is already in. For each, the milliseconds
// from asking to send until the homeserver accepted it: the first includes
// claiming one-time keys, making an Olm session with every device and
// sending them the room key; the second only encrypts and sends.
//
//   HEARTH_JS_PASSWORD=P node first_message.mjs --homeserver URL \
//     --user @u:server --room '!roomid:server'
//
// Prints one JSON line: {"first_ms": ..., "second_ms": ...}.

import { parseArgs } from "node:util";

import { bootstrapIdentity, loadSdk, newDevice, quietLogger } from "./common.mjs";

const { values: args } = parseArgs({
    options: { homeserver: { type: "string" }, user: { type: "string" }, room: { type: "string" } },
});
const password = process.env.HEARTH_JS_PASSWORD;
if (!password || !args.homeserver || !args.user || !args.room) {
    process.stderr.write("first_message: --homeserver, --user, --room and HEARTH_JS_PASSWORD are required\n");
    process.exit(2);
}

const logger = quietLogger();

const { sdk, cryptoApi } = await loadSdk();
const { OnlySignedDevicesIsolationMode } = cryptoApi;

const { client } = await newDevice(sdk, logger, args.homeserver, args.user, password, "hearth bench (js-sdk)");
const crypto = client.getCrypto();
crypto.setDeviceIsolationMode(new OnlySignedDevicesIsolationMode());
// A later round replaces the identity: that asks for the password.
await bootstrapIdentity(crypto, args.user, password);
const prepared = new Promise((resolve) => client.on(sdk.ClientEvent.Sync, (s) => s === "PREPARED" && resolve()));
await client.startClient({ initialSyncLimit: 1 });
await prepared;
while (!(await crypto.isEncryptionEnabledInRoom(args.room))) await new Promise((r) => setTimeout(r, 50));

async function timedSend(body) {
    const t0 = performance.now();
    await client.sendMessage(args.room, { msgtype: "m.text", body });
    return performance.now() - t0;
}
const first_ms = await timedSend("Welcome, everyone");
const second_ms = await timedSend("And a second message");
process.stdout.write(JSON.stringify({ first_ms, second_ms }) + "\n");
client.stopClient();
await Promise.race([client.logout(true), new Promise((r) => setTimeout(r, 3000))]);
process.exit(0);
