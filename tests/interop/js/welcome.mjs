#!/usr/bin/env node
// A newcomer's first minute in Element's own stack (matrix-js-sdk with Rust
// crypto), right after registering: log in, cross-sign this device as Element
// does for a fresh account, accept the bot's DM invitation and wait until the
// bot's welcome (a message containing --text) is decrypted.
//
//   HEARTH_JS_PASSWORD=P node welcome.mjs --homeserver URL --user @u:server \
//     --expect-from @bot:server --text "code of conduct" [--timeout 120]
//
// Prints one JSON line: {"welcome_at_ms": <epoch ms when it was readable>,
// "started_at_ms": ..., "room": ...}. Exit status 1 on timeout.

import { parseArgs } from "node:util";

import { bootstrapIdentity, loadSdk, newDevice, quietLogger } from "./common.mjs";

const startedAt = Date.now();
const { values: args } = parseArgs({
    options: {
        homeserver: { type: "string" },
        user: { type: "string" },
        "expect-from": { type: "string" },
        text: { type: "string" },
        timeout: { type: "string", default: "120" },
    },
});
const password = process.env.HEARTH_JS_PASSWORD;
if (!password || !args.homeserver || !args.user || !args["expect-from"] || !args.text) {
    process.stderr.write("welcome: --homeserver, --user, --expect-from, --text and HEARTH_JS_PASSWORD are required\n");
    process.exit(2);
}

const { sdk } = await loadSdk();
const { client } = await newDevice(sdk, quietLogger(), args.homeserver, args.user, password, "hearth welcome (js-sdk)");
await bootstrapIdentity(client.getCrypto(), args.user, password);

const welcomed = new Promise((resolve) => {
    const check = (event) => {
        if (event.getSender() !== args["expect-from"] || event.isDecryptionFailure()) return;
        const body = event.getContent()?.body;
        if (typeof body === "string" && body.includes(args.text)) resolve(event.getRoomId());
    };
    client.on(sdk.MatrixEventEvent.Decrypted, check);
    client.on(sdk.RoomEvent.Timeline, (event) => {
        if (!event.isEncrypted()) check(event);
    });
});
// The bot's invitation, accepted as soon as it is seen (Element's "Start chatting").
client.on(sdk.RoomMemberEvent.Membership, (_event, member) => {
    if (member.userId === args.user && member.membership === "invite") {
        client.joinRoom(member.roomId).catch((e) => process.stderr.write(`join failed: ${e}\n`));
    }
});
await client.startClient({ initialSyncLimit: 10 });

const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error("timeout")), Number(args.timeout) * 1000),
);
// Written, then exit once it is out: stdout is a pipe, and process.exit()
// right after console.log can lose the line.
function finish(result, status) {
    client.stopClient();
    process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(status));
}
try {
    const room = await Promise.race([welcomed, timeout]);
    finish({ welcome_at_ms: Date.now(), started_at_ms: startedAt, room }, 0);
} catch (e) {
    finish({ error: String(e) }, 1);
}
