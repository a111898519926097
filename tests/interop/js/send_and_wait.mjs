#!/usr/bin/env node
// Interop harness: behave like Element (matrix-js-sdk + Rust crypto, "exclude
// insecure devices"), send one message to a room and wait for a bot's reply.
//
//   HEARTH_JS_PASSWORD=P node send_and_wait.mjs --homeserver URL --user @u:server \
//     --room '!roomid:server' --send '!ping' --expect-from '@bot:server' --timeout 60
//
// --cross-signing new (default): give the account a fresh cross-signing
//   identity that signs this device, as Element's set-up does (replacing
//   any earlier identity: an "identity reset"). none: leave this device
//   unsigned, like a new login its owner never verified.
// --isolation only-signed (default): Element's "exclude insecure devices".
//   all: share keys with every device (an unsigned device needs it to send).
// --expect reply (default): wait for a reply to what was sent. withheld: wait
//   for a message from --expect-from that this device cannot decrypt, and
//   report why (the sender's m.room_key.withheld code, if it sent one).
//   none: only send.
// --history-from @poster:server --history-count N: a newcomer. Print
//   {"ready": true} once set up, wait to be invited to --room, accept (which
//   makes the SDK take the inviter's MSC4268 key bundle), then read the room's
//   earlier messages from the poster and report which could be decrypted
//   (with each one's time, thread and attachment, downloaded and decrypted);
//   any --send steps follow.
//
// --vote TEXT: after the first --send step, wait for a poll (MSC3381, as
//   Element shows it) from --expect-from in the room, then answer it with the
//   answer whose text is TEXT, the way Element does (matrix-events-sdk's
//   PollResponseEvent), print {"vote": ...}; the other --send steps follow.
//
// --read-only: send nothing (a room where members cannot post, e.g. an archive).
//
// --send may be given more than once: each is sent after the previous one's
//   outcome, and (with --go-file F) only once the file F.<step> exists.
//
// stdout carries one JSON line per step, then the result (the last line);
// diagnostics go to stderr.
// Exit status: 0 when the reply arrived, 1 otherwise (timeout or error).

import { existsSync } from "node:fs";
import { parseArgs } from "node:util";

import { bootstrapIdentity, loadSdk, newDevice, quietLogger } from "./common.mjs";

const { values: args } = parseArgs({
    options: {
        homeserver: { type: "string" },
        user: { type: "string" },
        room: { type: "string" },
        send: { type: "string", multiple: true, default: ["!ping"] },
        "go-file": { type: "string" },
        "expect-from": { type: "string" },
        timeout: { type: "string", default: "60" },
        "cross-signing": { type: "string", default: "new" },
        isolation: { type: "string", default: "only-signed" },
        expect: { type: "string", default: "reply" },
        "history-from": { type: "string" },
        "history-count": { type: "string", default: "0" },
        vote: { type: "string" },
        "read-only": { type: "boolean", default: false },
        verbose: { type: "boolean", default: false },
    },
});
// The password comes from the environment: argv is visible to every local
// user in `ps`, and a generated password may start with a dash.
args.password = process.env.HEARTH_JS_PASSWORD;
if (!args.password) {
    process.stderr.write("send_and_wait: HEARTH_JS_PASSWORD is required\n");
    process.exit(2);
}
for (const name of ["homeserver", "user", "room", "expect-from"]) {
    if (!args[name]) {
        process.stderr.write(`send_and_wait: --${name} is required\n`);
        process.exit(2);
    }
}
for (const [name, allowed] of [
    ["cross-signing", ["new", "none"]],
    ["isolation", ["only-signed", "all"]],
    ["expect", ["reply", "withheld", "none"]],
]) {
    if (!allowed.includes(args[name])) {
        process.stderr.write(`send_and_wait: --${name} must be one of ${allowed.join(", ")}\n`);
        process.exit(2);
    }
}
if (!(Number(args.timeout) > 0)) {
    process.stderr.write("send_and_wait: --timeout must be a positive number of seconds\n");
    process.exit(2);
}

// Keep stdout for the result: everything the SDK (or its wasm) prints goes to
// stderr, and below warn level only with --verbose.
const logger = quietLogger(args.verbose);

const { sdk, cryptoApi } = await loadSdk("warn");
const { AllDevicesIsolationMode, OnlySignedDevicesIsolationMode } = cryptoApi;

const started = Date.now();
const deadline = started + Number(args.timeout) * 1000;
const result = { ok: false, sent: false };
let client = null;
let lastProblem = null; // e.g. a reply that arrived but could not be decrypted

let finishing = false;
async function finish(extra) {
    if (finishing) return;
    finishing = true;
    Object.assign(result, extra);
    process.stdout.write(JSON.stringify(result) + "\n");
    try {
        client?.stopClient();
        // Remove the throwaway device so repeated runs do not pile up devices.
        await Promise.race([client?.logout(true), new Promise((r) => setTimeout(r, 3000))]);
    } catch {
        // best effort
    }
    process.exit(result.ok ? 0 : 1);
}

setTimeout(
    () => void finish({ ok: false, reason: `timeout after ${args.timeout}s`, last_problem: lastProblem }),
    Math.max(0, deadline - Date.now()),
);

async function until(predicate, what, intervalMs = 100) {
    while (!(await predicate())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, intervalMs));
    }
}

async function deviceReport(roomId) {
    // Which other members' devices could get the room key: only-signed-devices
    // mode withholds it from devices their owner has not cross-signed.
    const crypto = client.getCrypto();
    const room = client.getRoom(roomId);
    const others = (room?.getJoinedMembers() ?? []).map((m) => m.userId).filter((u) => u !== client.getUserId());
    const devices = await crypto.getUserDeviceInfo(others, true);
    const report = [];
    for (const [userId, byId] of devices) {
        for (const deviceId of byId.keys()) {
            const status = await crypto.getDeviceVerificationStatus(userId, deviceId);
            report.push({ user_id: userId, device_id: deviceId, signed_by_owner: Boolean(status?.signedByOwner) });
        }
    }
    return report;
}

async function main() {
    let login;
    ({ client, login } = await newDevice(
        sdk, logger, args.homeserver, args.user, args.password, "hearth interop (js-sdk)",
    ));
    const crypto = client.getCrypto();
    crypto.setDeviceIsolationMode(
        args.isolation === "all" ? new AllDevicesIsolationMode(false) : new OnlySignedDevicesIsolationMode(),
    );

    // Like Element, give this account a cross-signing identity (replacing any
    // earlier one, whose private keys a fresh device does not have). Without
    // it Rust crypto in only-signed-devices mode refuses to encrypt at all
    // ("cross-signing is not set up on your account"). Done before the first
    // sync: a /keys/query in flight during the reset can bring back the old
    // identity, leaving this device "not verified" (encryption refused too).
    if (args["cross-signing"] === "new") await bootstrapIdentity(crypto, args.user, args.password);

    // One step per --send: send it, wait for the expected outcome, print one
    // JSON line. A step after the first waits until the file <go-file>.<step>
    // exists, so the test can act in between (another moderator's command).
    const failures = [];
    const seen = [];
    const polls = [];
    let step = null; // { sentId, sentAt, resolve }
    const onEvent = (event) => {
        if (event.getRoomId() !== args.room || event.getSender() !== args["expect-from"]) return;
        if (event.isDecryptionFailure()) {
            if (event.getTs() < started) return; // history from before this device existed
            const reason = String(event.decryptionFailureReason);
            failures.push(reason);
            lastProblem = `could not decrypt a message from ${args["expect-from"]}: ${reason}`;
            if (args.expect === "withheld" && step && event.getTs() >= step.sentAt - 1000 && reason.includes("WITHHELD")) {
                step.resolve({ ok: true, withheld_reason: reason });
            }
            return;
        }
        if (event.isEncrypted() && event.isBeingDecrypted()) return;
        if (POLL_STARTS.includes(event.getType())) polls.push(event);
        if (event.getType() !== "m.room.message") return;
        seen.push(event);
        check();
    };
    const check = () => {
        if (!step?.sentId) return;
        for (const event of seen) {
            const content = event.getContent();
            if (content?.["m.relates_to"]?.["m.in_reply_to"]?.event_id !== step.sentId) continue;
            if (args.expect === "withheld") {
                lastProblem = "the reply was readable";
                continue;
            }
            step.resolve({
                ok: true,
                reply_body: content.body,
                reply_msgtype: content.msgtype,
                reply_encrypted: event.isEncrypted(),
                elapsed_ms: Date.now() - step.sentAt,
            });
        }
    };
    client.on(sdk.MatrixEventEvent.Decrypted, onEvent);
    client.on(sdk.RoomEvent.Timeline, (event, room) => {
        if (room?.roomId === args.room && !event.isEncrypted()) onEvent(event);
    });

    const prepared = new Promise((resolve) => {
        client.on(sdk.ClientEvent.Sync, (state) => state === "PREPARED" && resolve());
    });
    await client.startClient({ initialSyncLimit: 1 });
    await prepared;
    if (args["history-from"]) {
        process.stdout.write(JSON.stringify({ ready: true, device_id: login.device_id }) + "\n");
        await until(() => client.getRoom(args.room)?.getMyMembership() === "invite", "an invitation");
        result.inviter = client.getRoom(args.room).getMember(login.user_id)?.events.member?.getSender();
    }
    if (client.getRoom(args.room)?.getMyMembership() !== "join") {
        await client.joinRoom(args.room);
    }
    await until(() => crypto.isEncryptionEnabledInRoom(args.room), "the room's encryption state");
    result.setup_ms = Date.now() - started;
    const ownStatus = await crypto.getDeviceVerificationStatus(login.user_id, login.device_id);
    result.own_device_cross_signed = Boolean(ownStatus?.signedByOwner);

    if (args["history-from"]) result.history = await readHistory();

    const steps = [];
    for (const [index, text] of (args["read-only"] ? [] : args.send).entries()) {
        if (index > 0 && args["go-file"]) {
            const go = `${args["go-file"]}.${index}`;
            await until(() => existsSync(go), `the go-ahead for step ${index}`);
        }
        const outcome = new Promise((resolve) => {
            step = { sentId: null, sentAt: Date.now(), resolve };
        });
        const { event_id: eventId } = await client.sendMessage(args.room, { msgtype: "m.text", body: text });
        step.sentId = eventId;
        result.sent = true;
        result.sent_event_id = eventId;
        if (args.expect === "none") step.resolve({ ok: true });
        if (index === 0) {
            result.recipient_devices = await deviceReport(args.room);
            result.withheld_devices = result.recipient_devices
                .filter((d) => !d.signed_by_owner)
                .map((d) => `${d.user_id}/${d.device_id}`);
        }
        check();
        const done = { step: index, sent_event_id: eventId, ...(await outcome) };
        steps.push(done);
        process.stdout.write(JSON.stringify(done) + "\n");
        if (index === 0 && args.vote) {
            result.vote = await vote(polls, args.vote);
            process.stdout.write(JSON.stringify({ vote: result.vote }) + "\n");
        }
    }
    const last = steps[steps.length - 1] ?? { ok: true };
    void finish({ ...last, ok: steps.every((s) => s.ok), steps, decryption_failures: failures });
}

const POLL_STARTS = ["org.matrix.msc3381.poll.start", "m.poll.start"];

// Tap an answer of the latest poll, as Element's poll view does.
async function vote(polls, text) {
    await until(() => polls.length > 0, "a poll");
    const poll = polls[polls.length - 1];
    const content = poll.getContent();
    const start = content["org.matrix.msc3381.poll.start"] ?? content["m.poll.start"];
    const label = (a) => a["org.matrix.msc1767.text"] ?? a["m.text"]?.[0]?.body;
    const answer = start.answers.find((a) => label(a) === text);
    if (!answer) throw new Error(`no answer ${JSON.stringify(text)} in the poll`);
    const { PollResponseEvent } = await import("matrix-events-sdk");
    const response = PollResponseEvent.from([answer.id], poll.getId()).serialize();
    const { event_id: eventId } = await client.sendEvent(args.room, response.type, response.content);
    return {
        poll_id: poll.getId(),
        question: label(start.question),
        answers: start.answers.map(label),
        answered: answer.id,
        encrypted: poll.isEncrypted(),
        response_type: response.type,
        response_id: eventId,
    };
}

// The poster's messages from before this device joined: paged back until
// --history-count are found (or the room's start), then each decrypted if
// its key arrived (the bundle is imported while joining, or soon after).
async function readHistory() {
    const room = client.getRoom(args.room);
    const wanted = Number(args["history-count"]);
    const fromPoster = () =>
        room
            .getLiveTimeline()
            .getEvents()
            .filter((e) => e.getSender() === args["history-from"] && e.getWireType() === "m.room.encrypted");
    while (fromPoster().length < wanted && room.getLiveTimeline().getPaginationToken("b") !== null) {
        await client.scrollback(room, 50);
    }
    const events = fromPoster().slice(-wanted);
    // Give the bundle time to land, retrying what is not yet readable.
    const settleBy = Math.min(deadline - 2000, Date.now() + 20000);
    while (Date.now() < settleBy) {
        for (const event of events) {
            if (event.isDecryptionFailure()) await client.decryptEventIfNeeded(event, { isRetry: true });
        }
        if (events.every((e) => !e.isDecryptionFailure() && !e.isBeingDecrypted())) break;
        await new Promise((r) => setTimeout(r, 250));
    }
    const readable = events.filter((e) => !e.isDecryptionFailure());
    const details = [];
    for (const e of readable) {
        const content = e.getContent();
        const relation = e.getWireContent()["m.relates_to"] ?? null;
        const detail = {
            event_id: e.getId(),
            ts: e.getTs(),
            msgtype: content.msgtype ?? null,
            body: content.body ?? null,
            thread_root: relation?.rel_type === "m.thread" ? relation.event_id : null,
            formatted_body: content.formatted_body ?? null,
            mentions: content["m.mentions"] ?? null,
        };
        if (content.file?.url) detail.file = await downloadDecrypted(content.file);
        details.push(detail);
    }
    return {
        found: events.length,
        bodies: readable.map((e) => e.getContent().body ?? null),
        failures: events.filter((e) => e.isDecryptionFailure()).map((e) => String(e.decryptionFailureReason)),
        details,
    };
}

// An encrypted attachment (the spec's EncryptedFile), as Element opens it:
// downloaded with the device's token (authenticated media), its SHA-256
// checked, then AES-CTR decrypted with the key and IV it names. The bytes
// come back in base64, or why they could not be read.
async function downloadDecrypted(file) {
    const [server, mediaId] = file.url.slice("mxc://".length).split("/");
    const response = await fetch(`${args.homeserver}/_matrix/client/v1/media/download/${server}/${mediaId}`, {
        headers: { Authorization: `Bearer ${client.getAccessToken()}` },
    });
    if (!response.ok) return { error: `download failed: HTTP ${response.status}` };
    const ciphertext = new Uint8Array(await response.arrayBuffer());
    const subtle = globalThis.crypto.subtle;
    const digest = Buffer.from(await subtle.digest("SHA-256", ciphertext)).toString("base64").replace(/=+$/, "");
    if (digest !== file.hashes?.sha256) return { error: "the SHA-256 does not match" };
    const key = await subtle.importKey("jwk", file.key, { name: "AES-CTR" }, false, ["decrypt"]);
    const iv = Buffer.from(file.iv, "base64");
    const plain = await subtle.decrypt({ name: "AES-CTR", counter: iv, length: 64 }, key, ciphertext);
    return { base64: Buffer.from(plain).toString("base64") };
}

main().catch((err) => void finish({ ok: false, reason: `${err?.name ?? "Error"}: ${err?.message ?? err}` }));
