// Draupnir's own reading and writing of a policy list, against the test's
// Synapse: @gnuxie/matrix-protection-suite is the library Draupnir is built
// on, and this script drives its policy-room code with nothing in between.
//
//   node policy_list.mjs read  --homeserver URL --user @me:hs --room !list \
//        --check @a:hs [--check @b:hs ...]
//     Prints {"rules": N, "matches": {"@a:hs": ["m.ban", ...], ...}}: the
//     recommendations of the rules Draupnir finds for each user, hashed
//     rules included (as Draupnir's protections search them).
//   node policy_list.mjs write --homeserver URL --user @me:hs --room !list \
//        [--ban ENTITY ...] [--takedown-hashed @user:hs ...]
//     Writes each as Draupnir's `!draupnir ban` and takedown do
//     (StandardPolicyRoomEditor); prints {"written": N}.
//
// The account's password comes in HEARTH_JS_PASSWORD, never on the command line.
import { parseArgs } from "node:util";

import mps from "@gnuxie/matrix-protection-suite";
import basic from "@the-draupnir-project/matrix-basic-types";

const { Ok, ActionError, isError, PolicyRuleType, StandardPolicyRoomEditor, StandardPolicyRoomRevision } = mps;
const { MatrixRoomID } = basic;

const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
        homeserver: { type: "string" },
        user: { type: "string" },
        room: { type: "string" },
        check: { type: "string", multiple: true, default: [] },
        ban: { type: "string", multiple: true, default: [] },
        "takedown-hashed": { type: "string", multiple: true, default: [] },
    },
});

async function call(token, method, path, body) {
    const response = await fetch(values.homeserver + path, {
        method,
        headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) {
        throw new Error(`${method} ${path.split("?")[0]}: HTTP ${response.status} ${data.errcode ?? ""}`);
    }
    return data;
}

async function login() {
    const data = await call(null, "POST", "/_matrix/client/v3/login", {
        type: "m.login.password",
        identifier: { type: "m.id.user", user: values.user },
        password: process.env.HEARTH_JS_PASSWORD,
        initial_device_display_name: "draupnir policy check",
    });
    return data.access_token;
}

const room = encodeURIComponent(values.room);

async function read(token) {
    const state = await call(token, "GET", `/_matrix/client/v3/rooms/${room}/state`);
    const revision = StandardPolicyRoomRevision.blankRevision(new MatrixRoomID(values.room)).reviseFromState(state);
    const matches = {};
    for (const entity of values.check) {
        matches[entity] = revision
            .allRulesMatchingEntity(entity, { type: PolicyRuleType.User, searchHashedRules: true })
            .map((rule) => rule.recommendation)
            .sort();
    }
    return { rules: revision.allRules().length, matches };
}

async function write(token) {
    // Draupnir's editor sends through whatever client it is given: here, the
    // client-server API itself.
    const sender = {
        async sendStateEvent(roomID, type, stateKey, content) {
            const key = encodeURIComponent(stateKey);
            try {
                const data = await call(token, "PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomID)}/state/${type}/${key}`, content);
                return Ok(data.event_id);
            } catch (error) {
                return ActionError.Result(String(error));
            }
        },
    };
    // The revision issuers are read only when removing rules, which this does not do.
    const editor = new StandardPolicyRoomEditor(new MatrixRoomID(values.room), undefined, undefined, sender);
    let written = 0;
    for (const entity of values.ban) {
        const result = await editor.banEntity(PolicyRuleType.User, entity, "spam, from Draupnir");
        if (isError(result)) throw new Error(result.error.message);
        written += 1;
    }
    for (const entity of values["takedown-hashed"]) {
        const result = await editor.takedownEntity(PolicyRuleType.User, entity, { shouldHash: true });
        if (isError(result)) throw new Error(result.error.message);
        written += 1;
    }
    return { written };
}

const token = await login();
try {
    const out = positionals[0] === "write" ? await write(token) : await read(token);
    process.stdout.write(JSON.stringify(out) + "\n");
} finally {
    await call(token, "POST", "/_matrix/client/v3/logout", {});
}
