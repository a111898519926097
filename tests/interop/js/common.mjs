// What every interop script does the same way: Node 20 made ready for
// matrix-js-sdk, stdout kept for results, and a device set up as Element's
// set-up does (Rust crypto, a cross-signing identity that signs it).

// matrix-js-sdk 43 targets Node >= 22; Node 20 lacks Promise.withResolvers.
if (typeof Promise.withResolvers !== "function") {
    Promise.withResolvers = function withResolvers() {
        let resolve;
        let reject;
        const promise = new this((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

// Everything the SDK (or its wasm) prints goes to stderr, below warn level
// only when *verbose*: stdout carries the script's JSON lines alone.
export function quietLogger(verbose = false) {
    const toStderr = (...parts) => process.stderr.write(parts.map(String).join(" ") + "\n");
    const quiet = () => {};
    console.log = console.info = console.debug = console.trace = verbose ? toStderr : quiet;
    console.warn = console.error = toStderr;
    const logger = {
        trace: verbose ? toStderr : quiet,
        debug: verbose ? toStderr : quiet,
        info: verbose ? toStderr : quiet,
        warn: toStderr,
        error: toStderr,
        getChild: () => logger,
    };
    return logger;
}

// Give the account a new cross-signing identity that signs this device (an
// identity reset when it had one: that asks for the password).
export async function bootstrapIdentity(crypto, userId, password) {
    await crypto.bootstrapCrossSigning({
        setupNewCrossSigning: true,
        authUploadDeviceSigningKeys: async (makeRequest) => {
            try {
                return await makeRequest(null); // a first set-up needs no UIA (MSC3967)
            } catch (err) {
                const session = err?.data?.session;
                if (err?.httpStatus !== 401 || !session) throw err;
                const identifier = { type: "m.id.user", user: userId };
                return await makeRequest({ type: "m.login.password", identifier, password, session });
            }
        },
    });
}

// matrix-js-sdk and its crypto API, loaded after the polyfill above, with
// the SDK's own logger at *level*.
export async function loadSdk(level = "error") {
    const sdk = await import("matrix-js-sdk");
    const cryptoApi = await import("matrix-js-sdk/lib/crypto-api/index.js");
    const { logger: sdkLogger } = await import("matrix-js-sdk/lib/logger.js");
    sdkLogger.setLevel(level);
    return { sdk, cryptoApi };
}

// A new device of *userId*, logged in with its password, its Rust crypto
// ready (in memory, as a fresh browser profile). *retry*, if given, wraps the
// login (a crowd meets 429s). Returns the client and the login's answer.
export async function newDevice(sdk, logger, homeserver, userId, password, name, retry = (_what, f) => f()) {
    const login = await retry("logging in", () =>
        sdk.createClient({ baseUrl: homeserver, logger }).loginRequest({
            type: "m.login.password",
            identifier: { type: "m.id.user", user: userId },
            password,
            initial_device_display_name: name,
        }),
    );
    const client = sdk.createClient({
        baseUrl: homeserver,
        userId: login.user_id,
        deviceId: login.device_id,
        accessToken: login.access_token,
        logger,
    });
    await client.initRustCrypto({ useIndexedDB: false });
    return { client, login };
}
