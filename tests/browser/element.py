"""What a person does in Element Web 1.11.88, step by step, as they see it:
the page's words and accessible names, so a test reads like the journey.

Selectors follow ../shared/element-web/README.md: the composer is
`div[contenteditable][role=textbox]`, timeline events `li[data-scroll-tokens]`
with `.mx_EventTile_body` for their text."""

from __future__ import annotations

import asyncio
import time

from tests.browser.driver import Session, StepFailed

COMPOSER = "div.mx_BasicMessageComposer_input[contenteditable][role=textbox]"
TILE = "li[data-scroll-tokens]"
BODY = f"{TILE} .mx_EventTile_body:not(.mx_ReplyChain *)"
UNDECRYPTABLE = f"{TILE} .mx_DecryptionFailureBody"
ROOM_HEADER = ".mx_RoomHeader"
# A poll as Element draws it (MSC3381).
POLL = f"{TILE} .mx_MPollBody"
# What Element shows instead of the composer to someone who may not post.
NO_PERMISSION = ".mx_MessageComposer_noperm_error"


def button(text: str) -> str:
    """A button (Element draws most as `div[role=button]`) showing *text*."""
    return f"::-p-aria([name='{text}'][role='button'])"


def text_of(words: str) -> str:
    return f"::-p-text({words})"


async def register(
    page: Session, username: str, password: str, token: str, picture: str | None = None
) -> float:
    """Sign up on Element's own page with a registration token, as a
    newcomer does. Returns the time (perf_counter) registration completed.
    With *picture*, the token page is photographed, filled in, under that name."""
    await page.call("goto", url=page_url(page, "#/register"))
    await page.fill("#mx_RegistrationForm_username", username)
    await page.fill("#mx_RegistrationForm_password", password)
    await page.fill("#mx_RegistrationForm_passwordConfirm", password)
    await page.click("input.mx_Login_submit[type=submit]")
    await page.fill("input[name=registrationTokenField]", token)
    if picture is not None:
        await page.screenshot(picture)
    await page.click(button("Continue"))
    # Registered once Element leaves the sign-up pages for the app.
    await page.wait(".mx_MatrixChat, .mx_UseCaseSelection", timeout=60_000)
    done = time.perf_counter()
    await settle_in(page)
    return done


async def log_in(page: Session, username: str, password: str) -> None:
    """Sign in on Element's page with an account made elsewhere. For an
    account with no cross-signing yet, Element sets it up by itself."""
    await page.call("goto", url=page_url(page, "#/login"))
    await page.fill("#mx_LoginForm_username", username)
    await page.fill("#mx_LoginForm_password", password)
    await page.click("input.mx_Login_submit[type=submit]")
    await settle_in(page)


def page_url(page: Session, fragment: str) -> str:
    return f"{page.base_url}/{fragment}"


async def settle_in(page: Session) -> None:
    """Past what Element shows a new account first: who it is for (skipped),
    setting up keys (Element cross-signs a fresh account's device by
    itself), the threads popover and the toasts, answered as a person who
    wants to get on with it does."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if await page.present(".mx_UseCaseSelection"):
            await page.click_if_there(button("Skip"))
            continue
        if await page.present(".mx_CompleteSecurity, .mx_SetupEncryptionBody"):
            shot = await page.screenshot("verify-asked")
            raise StepFailed(f"{page.name}: Element asks to verify this device ({shot})")
        if await page.present(".mx_RoomList"):
            break
        await asyncio.sleep(0.5)
    else:
        shot = await page.screenshot("not-settled")
        raise StepFailed(f"{page.name}: Element did not finish starting (screenshot: {shot})")
    await dismiss_prompts(page)


async def dismiss_prompts(page: Session) -> None:
    """The threads popover (OK) and the notifications toast (Dismiss). The
    Secure Backup toast is left: what it means is the welcome's job."""
    # Only what is showing now: waiting for one that may never come would
    # be time no person spends.
    for prompt in (button("OK"), f".mx_Toast_toast {button('Dismiss')}"):
        if await page.present(prompt):
            await page.click_if_there(prompt)


async def open_room(page: Session, name: str) -> None:
    """Click *name* in the room list."""
    await page.click(f".mx_RoomList ::-p-text({name})")
    await page.wait_text(ROOM_HEADER, name)


async def accept_invite(page: Session, inviter_name: str) -> None:
    """Open the invitation from *inviter_name* and accept it: a direct
    message's is "Start chatting"."""
    await page.click(f".mx_RoomList ::-p-text({inviter_name})")
    await page.click(button("Start chatting"))
    await page.wait(COMPOSER, timeout=60_000)


async def accept_room_invite(page: Session, name: str) -> None:
    """Open the invitation to the room *name* and join it."""
    await page.click(f".mx_RoomList ::-p-text({name})")
    await page.click(button("Accept"))
    await page.wait(COMPOSER, timeout=60_000)


async def send(page: Session, text: str) -> None:
    await page.click(COMPOSER)
    await page.call("type", text=text)
    await page.press("Enter")


async def ask(page: Session, text: str, timeout: int = 60_000) -> str:
    """Send *text* in the open room; the text of the next message after it
    (the bot's answer, in a quiet room)."""
    before = len(await page.texts(BODY))
    await send(page, text)
    await page.wait_count(BODY, before + 2, timeout)
    return (await page.texts(BODY))[before + 1]


async def wait_message(page: Session, words: str, timeout: int = 60_000) -> None:
    """Until a message in the open room shows *words*, decrypted."""
    await page.wait_text(BODY, words, timeout)


async def react(page: Session, words: str, emoji: str) -> None:
    """React with *emoji* to the message showing *words*, from the menu
    that shows when the pointer is over it, as a person does."""
    await page.call("hover", selector=f"{BODY} ::-p-text({words})")
    await page.click(f".mx_MessageActionBar {button('React')}")
    await page.click(f".mx_EmojiPicker ::-p-text({emoji})")


async def report(page: Session, words: str, reason: str) -> None:
    """Report the message showing *words* with Element's own Report, from
    the message's options menu."""
    await page.call("hover", selector=f"{BODY} ::-p-text({words})")
    await page.click(f".mx_MessageActionBar {button('Options')}")
    await page.click("::-p-aria([name='Report'][role='menuitem'])")
    await page.fill(".mx_ReportEventDialog textarea", reason)
    await page.click(f".mx_ReportEventDialog {button('Send report')}")
    await page.call("gone", selector=".mx_ReportEventDialog", timeout=30_000)


async def rendered(page: Session, words: str, timeout: int = 60_000) -> str:
    """The HTML Element rendered for the last message in the open room that
    shows *words*: what the patient sees, formatting and all."""
    await wait_message(page, words, timeout)
    shown = zip(await page.texts(BODY), await page.html(BODY), strict=False)
    return [html for text, html in shown if words in text][-1]


# Element's words on a message whose key the sender withheld from this
# device because it is unverified (m.room_key.withheld, code m.unverified).
WITHHELD_UNVERIFIED = "because your device is unverified"


async def log_in_unverified(page: Session, username: str, password: str) -> None:
    """Sign in on another device and leave it unverified: Element asks to
    verify it, and the person skips that for now."""
    await page.call("goto", url=page_url(page, "#/login"))
    await page.fill("#mx_LoginForm_username", username)
    await page.fill("#mx_LoginForm_password", password)
    await page.click("input.mx_Login_submit[type=submit]")
    await page.wait(text_of("Verify this device"), timeout=60_000)
    await page.click("::-p-aria([name='Skip verification for now'])")
    await page.click(button("I'll verify later"))
    await settle_in(page)


async def wait_count_of(page: Session, words: str, count: int, timeout: int = 60_000) -> None:
    """Until *count* messages in the open room show *words*."""
    deadline = time.monotonic() + timeout / 1000
    while sum(words in t for t in await page.texts(BODY)) < count:
        if time.monotonic() > deadline:
            shot = await page.screenshot(f"fewer-than-{count}")
            raise StepFailed(f"{page.name}: fewer than {count} messages show {words!r} ({shot})")
        await asyncio.sleep(0.5)


async def verify_from_other_session(new: Session, old: Session) -> None:
    """Verify the session *new* from *old*, the person's first: asked from
    the new one's toast, accepted on the old one, emoji compared on both."""
    await new.click(f".mx_Toast_toast {button('Verify')}")
    await new.click(button("Verify with another device"))
    await old.click(f".mx_Toast_toast {button('Verify Session')}", timeout=60_000)
    # The old session offers to compare emoji (neither has a camera).
    await old.click(f".mx_Dialog {button('Start')}", timeout=30_000)
    await old.click(button("They match"), timeout=60_000)
    await new.click(button("They match"), timeout=60_000)
    for page in (old, new):
        await page.screenshot("verified-dialog")
        for done in (button("Got it"), button("Done")):
            await page.click_if_there(done, timeout=10_000)
