"""A patient's first minute: from registration complete to the bot's welcome
readable, in Element Web against the same journey in Element's own SDK.

    cd /work/main && .venv/bin/python -m bench.first_hour_figures [--rounds 3]

Starts a private Synapse, the admin agent and the bot with onboarding, then
*rounds* times each, alternating:

- Element Web (`../shared/element-web`, headless Chromium, as the browser
  tests drive it): a newcomer signs up on Element's registration page with a
  group token; timed from Element leaving its sign-up pages until the
  welcome is rendered, decrypted, in the DM the newcomer accepted (getting
  past Element's first screens and clicking "Start chatting" included);
- the floor, matrix-js-sdk with Rust crypto (`tests/interop/js/welcome.mjs`):
  a newcomer registered through the API, then logged in, cross-signed,
  the invitation accepted as soon as it is seen; timed from registration
  until the welcome is decrypted.

Medians. Never asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from datetime import timedelta
from typing import Any

from bench.harness import err, private_homeserver, run_bench, versions
from bench.report import Row, print_report, ratio
from bots.framework.logging import configure_logging
from provisioning.tokens import Tokens
from tests.browser import element
from tests.browser.driver import Browser, element_copy, missing, serving
from tests.support.community import running_agent
from tests.support.homeserver import SERVER_NAME, Homeserver, running_bot
from tests.support.js_client import JS_DIR, node
from tests.support.onboarding_scene import set_up
from tests.support.registration import register

WELCOME = "Be kind."  # the test community's code of conduct, inside the welcome


async def js_welcome(hs: Homeserver, token: str, bot: str) -> float:
    """Seconds from registration to the welcome decrypted in js-sdk."""
    status, data, user = await register(hs.base_url, token)
    if user is None:
        raise RuntimeError(f"registration failed: {status} {data}")
    registered = time.time()
    proc = await asyncio.create_subprocess_exec(
        node(), "welcome.mjs", "--homeserver", hs.base_url, "--user", user.user_id,
        "--expect-from", bot, "--text", WELCOME,
        cwd=JS_DIR, env={**os.environ, "HEARTH_JS_PASSWORD": user.password},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, problems = await proc.communicate()
    lines = out.decode().strip().splitlines()
    if proc.returncode != 0 or not lines:
        # Printed, not raised: the log's privacy filter would hide it.
        err.print(
            f"welcome.mjs ({proc.returncode}): {lines[-1:]} {problems.decode()[-400:]}",
            markup=False,
        )
        raise RuntimeError("welcome.mjs failed (above)")
    line = json.loads(lines[-1])
    return float(line["welcome_at_ms"]) / 1000 - registered


async def element_welcome(browser: Browser, url: str, token: str, bot: str, n: int) -> float:
    """Seconds from Element's sign-up finished to the welcome rendered."""
    page = await browser.session(f"newcomer-{n}", url)
    try:
        username = f"newcomer-{secrets.token_hex(3)}"
        registered = await element.register(page, username, secrets.token_urlsafe(16), token)
        await element.accept_invite(page, bot.split(":")[0][1:])
        await element.wait_message(page, WELCOME)
        return time.perf_counter() - registered
    finally:
        await page.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure_logging("warning", library_level="error")
    why = missing()
    if why is not None:
        raise SystemExit(f"first_hour_figures: {why}")
    results: dict[str, Any] = versions() | {"rounds": args.rounds}
    async with private_homeserver("hearth-first-hour-", args.keep) as (hs, tmp):
        # The onboarding tests' community: a carers group with one question.
        setup = await set_up(hs, tmp)
        community, config, bot = setup.community, setup.config, setup.bot
        admin = community.admin
        tokens = Tokens(await hs.api(admin), admin.user_id)
        token = (await tokens.create(2 * args.rounds, timedelta(days=1), "carers")).token
        webapp = element_copy(tmp, hs.base_url, SERVER_NAME)
        ours: list[float] = []
        floor: list[float] = []
        async with (
            running_agent(community, tmp / "agent-home"),
            running_bot(config, timeout=60),
            serving(webapp) as url,
            Browser.running(tmp / "screenshots") as browser,
        ):
            for n in range(args.rounds):
                err.print(f"round {n + 1} of {args.rounds}")
                ours.append(await element_welcome(browser, url, token, bot.user_id, n))
                floor.append(await js_welcome(hs, token, bot.user_id))
        results |= {
            "element_s": [round(x, 2) for x in ours],
            "js_s": [round(x, 2) for x in floor],
            "element_median_s": statistics.median(ours),
            "js_median_s": statistics.median(floor),
        }
    return results


def report(r: dict[str, Any]) -> None:
    ours, floor = r["element_median_s"], r["js_median_s"]
    rows = [
        Row(
            "Registration complete → the welcome readable (median)",
            f"{ours:.1f} s",
            f"{floor:.1f} s",
            ratio(ours, floor),
        )
    ]
    notes = [
        f"Element Web, each round: {', '.join(f'{x:.1f} s' for x in r['element_s'])};"
        f" js-sdk: {', '.join(f'{x:.1f} s' for x in r['js_s'])}.",
        "Element's includes its first screens (keys set up, popovers) and the click on"
        " the invitation; js-sdk's its login and cross-signing.",
    ]
    title = f"A patient's first minute ({r['date']}, {r['cpus']} CPUs)"
    print_report(title, rows, notes, value="Element Web", floor="js-sdk (floor)")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    return run_bench(lambda: run(args), report, "Interrupted; Synapse was stopped.")


if __name__ == "__main__":
    sys.exit(main())
