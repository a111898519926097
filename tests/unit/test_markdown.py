"""The bot's Markdown: its own templates formatted, members' text shown as typed."""

from __future__ import annotations

import pytest

from bots.framework.actions import ActionTypes, Reply, SendDirect, to_record
from bots.framework.content import message_content
from bots.framework.markdown import Md, bullets, code, esc, md, mention, render

HOSTILE = [
    "**[click here](https://evil.example/login)**",
    "<a href='https://evil.example'>x</a><img src=x onerror=alert(1)>",
    "# Heading\n    indented code\n> quote\n- item\n1. item\n---",
    "<https://evil.example> ![img](https://evil.example/p.png) &amp; \\*",
    "`code` ``more`` \\",
    "[a]: https://evil.example\n[a]",
    "see\r\r    FAKE: approve @evil:x",
    "one\r\n    two\r- three",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_member_s_text_shows_as_typed_and_links_nowhere(text: str) -> None:
    said = render(md("Answer from {}: {}", "Sam", text))
    for tag in ("<a", "<img", "<h1", "<ul", "<ol", "<blockquote", "<pre", "<strong", "<hr"):
        assert tag not in said.html
    lines = [line.strip() for line in text.splitlines()]
    assert said.body == "Answer from Sam: " + "\n".join(lines)
    assert "<code>" not in said.html


def test_the_bot_s_own_markdown_is_formatted() -> None:
    said = render(
        md("### Next steps\n\n{}", bullets([md("Send {} to start", code("!agree")), "rest"]))
    )
    assert said.html == (
        "<h3>Next steps</h3>\n<ul>\n<li>Send <code>!agree</code> to start</li>\n"
        "<li>rest</li>\n</ul>\n"
    )
    assert said.body == "Next steps\n\n- Send !agree to start\n- rest"


def test_a_wrapped_line_is_one_paragraph_and_a_member_s_line_break_is_kept() -> None:
    said = render(md("one\ntwo\n\n{}", "three\nfour"))
    assert said.html == "<p>one\ntwo</p>\n<p>three<br />\nfour</p>\n"
    assert said.body == "one\ntwo\n\nthree\nfour"


def test_a_code_span_holds_any_text() -> None:
    for text in ("!ban @x", "a`b", "``", "`edge`"):
        said = render(code(text))
        assert said.body == text
        assert said.html.startswith("<p><code>")


def test_a_mention_is_a_pill_link_and_the_id_in_the_plain_body() -> None:
    said = render(md("Please welcome {}!", mention("@a_b*c:example.org")))
    assert 'href="https://matrix.to/#/@a_b%2Ac:example.org"' in said.html
    assert ">@a_b*c:example.org</a>" in said.html
    assert said.body == "Please welcome @a_b*c:example.org!"


def test_inline_text_keeps_one_leading_space_and_other_values_are_text() -> None:
    assert render(md("Tuesday{}", "    · 3 going")).body == "Tuesday · 3 going"
    assert render(md("{:g} h, {}", 1.5, ["*x*"])).body == "1.5 h, ['*x*']"
    assert "<em>" not in render(md("{}", ["*x*"])).html


def test_joining_and_adding_escape_plain_strings() -> None:
    assert Md(", ").join(["*a*", Md("*b*")]) == "\\*a\\*, *b*"
    assert Md("*x* ") + "*y*" == "*x* \\*y\\*"
    assert "*y* " + Md("*x*") == "\\*y\\* *x*"
    assert esc("a\n  b") == "a\\\nb"


def test_a_notice_written_in_markdown_carries_both_bodies_through_the_outbox() -> None:
    action = Reply("!r:x", "$e", md("Send {} — {}", code("!help"), "<b>Sam</b>"))
    again = ActionTypes().from_record(to_record(action))
    assert again == action
    content = message_content(again)
    assert content["body"] == "Send !help — <b>Sam</b>"
    assert content["format"] == "org.matrix.custom.html"
    assert content["formatted_body"] == "<p>Send <code>!help</code> — &lt;b&gt;Sam&lt;/b&gt;</p>\n"


def test_a_plain_string_is_sent_plain() -> None:
    content = message_content(SendDirect("@a:x", "**not markdown**"))
    assert content["body"] == "**not markdown**"
    assert "formatted_body" not in content
