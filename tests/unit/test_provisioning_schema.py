"""The community YAML: every mistake names the file, the key path and the line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bots.base.errors import ConfigError, ConfigProblems
from provisioning.schema import (
    CommunityFile,
    JoinRule,
    RoomKind,
    load_community,
)

_REPO = Path(__file__).resolve().parents[2]
EXAMPLE = _REPO / "config" / "community.example.yaml"

GOOD = """\
community:
  key: circle
  name: Test Circle
  topic: A private home
  homeserver: https://matrix.example.org/
  admin:
    user_id: "@hearth-admin:example.org"
    access_token_file: secrets/admin.token
  timezone: Europe/London
  code_of_conduct: Be kind.
  crisis_resources: Call 112.
  moderators:
    - "@mod:example.org"
bots:
  - user_id: "@bot:example.org"
    power_level: 100
groups:
  - key: newly-diagnosed
    name: Newly diagnosed
    join: space
    rooms:
      - key: general
        name: General
      - key: announcements
        name: Announcements
        kind: announcements
  - key: carers
    name: Carers
    join: knock
    rooms:
      - key: general
        name: General
        kind: chat
  - key: research
    name: Research
"""


def write(tmp_path: Path, text: str, name: str = "community.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def replaced(old: str, new: str, text: str = GOOD) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    numbers = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return numbers[occurrence - 1]


def error_for(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_community(path)
    err = info.value
    assert err.file == str(path)
    assert str(err).startswith(f"{path}:{err.line}: " if err.line else f"{path}: ")
    return err


# --- good files ------------------------------------------------------------------------------


def test_the_example_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "community.yaml"
    shutil.copy(EXAMPLE, path)
    cfg = load_community(path)
    assert cfg.community.key
    assert cfg.groups
    # Relative paths are taken from the config's folder.
    assert cfg.community.admin.access_token_file.is_absolute()
    assert cfg.community.admin.access_token_file.is_relative_to(tmp_path)
    assert {g.join for g in cfg.groups} == set(JoinRule)


def test_a_good_file_loads(tmp_path: Path) -> None:
    cfg = load_community(write(tmp_path, GOOD))
    assert cfg.community.homeserver == "https://matrix.example.org"
    assert cfg.community.admin.access_token_file == tmp_path / "secrets" / "admin.token"
    assert [g.key for g in cfg.groups] == ["newly-diagnosed", "carers", "research"]
    assert cfg.groups[0].rooms[1].kind is RoomKind.ANNOUNCEMENTS
    assert cfg.group("carers") is cfg.groups[1]
    assert cfg.group("nope") is None
    assert cfg.all_users() == {
        "@hearth-admin:example.org",
        "@mod:example.org",
        "@bot:example.org",
    }


def test_defaults_are_the_safe_ones(tmp_path: Path) -> None:
    cfg = load_community(write(tmp_path, GOOD))
    research = cfg.groups[2]
    assert research.join is JoinRule.INVITE
    assert research.history_before_joining is False
    assert research.moderators == ()
    assert research.topic == ""
    assert [(r.key, r.name, r.kind) for r in research.rooms] == [
        ("general", "General", RoomKind.CHAT)
    ]
    assert cfg.bots[0].power_level == 100
    without_tz = load_community(write(tmp_path, replaced("  timezone: Europe/London\n", "")))
    assert without_tz.community.timezone == "UTC"


def test_bots_and_groups_may_be_left_out(tmp_path: Path) -> None:
    text = GOOD[: GOOD.index("bots:")]
    cfg = load_community(write(tmp_path, text))
    assert cfg.bots == ()
    assert cfg.groups == ()


def test_a_bot_level_defaults_to_100(tmp_path: Path) -> None:
    cfg = load_community(write(tmp_path, replaced("    power_level: 100\n", "")))
    assert cfg.bots[0].power_level == 100


# --- mistakes --------------------------------------------------------------------------------


def test_an_unknown_key_is_named_with_its_path_and_line(tmp_path: Path) -> None:
    text = replaced("        kind: chat", "        kindd: chat")
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[1].rooms[0].kindd"
    assert err.line == line_of(text, "kindd")
    assert "unknown key" in err.expected


def test_an_unknown_top_level_key(tmp_path: Path) -> None:
    text = GOOD + "group:\n  - key: x\n"
    err = error_for(tmp_path, text)
    assert (err.key_path, err.line) == ("group", line_of(text, "group:"))


def test_a_wrong_type_is_named(tmp_path: Path) -> None:
    text = replaced("    join: knock", "    join: knock\n    history_before_joining: maybe")
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[1].history_before_joining"
    assert err.line == line_of(text, "history_before_joining")
    assert "boolean" in err.expected
    assert "'maybe'" in err.expected


def test_a_list_where_a_mapping_is_expected(tmp_path: Path) -> None:
    text = replaced(
        '  admin:\n    user_id: "@hearth-admin:example.org"\n'
        "    access_token_file: secrets/admin.token\n",
        '  admin:\n    - "@hearth-admin:example.org"\n',
    )
    err = error_for(tmp_path, text)
    assert err.key_path == "community.admin"
    assert err.line == line_of(text, "admin:")


def test_a_bad_key_format(tmp_path: Path) -> None:
    text = replaced("  - key: newly-diagnosed", '  - key: "Bad Key"')
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[0].key"
    assert err.line == line_of(text, "Bad Key")
    assert "lowercase letters, digits and '-'" in err.expected
    assert "'Bad Key'" in err.expected


@pytest.mark.parametrize("key", ["-lead", "a" * 41, "under_score", "Ünï", ""])
def test_bad_room_keys(tmp_path: Path, key: str) -> None:
    text = replaced("      - key: announcements", f'      - key: "{key}"')
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[0].rooms[1].key"
    assert err.line == line_of(text, f'key: "{key}"')


def test_a_duplicate_group_key_is_reported_at_the_second_one(tmp_path: Path) -> None:
    text = replaced("  - key: research", "  - key: newly-diagnosed")
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[2].key"
    assert err.line == line_of(text, "  - key: newly-diagnosed", occurrence=2)
    assert "'newly-diagnosed'" in err.expected
    assert "groups[0]" in err.expected


def test_every_duplicate_group_key_is_reported_together(tmp_path: Path) -> None:
    text = replaced("  - key: research", "  - key: newly-diagnosed")
    text = replaced("  - key: carers", "  - key: newly-diagnosed", text)
    err = error_for(tmp_path, text)
    assert isinstance(err, ConfigProblems)
    assert [p.key_path for p in err.problems] == ["groups[1].key", "groups[2].key"]


def test_duplicate_room_keys_in_a_group(tmp_path: Path) -> None:
    text = replaced("      - key: announcements", "      - key: general")
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[0].rooms"
    assert err.line == line_of(text, "rooms:")
    assert "'general'" in err.expected
    assert "twice" in err.expected


def test_the_same_room_key_in_two_groups_is_fine(tmp_path: Path) -> None:
    cfg = load_community(write(tmp_path, GOOD))
    assert cfg.groups[0].rooms[0].key == cfg.groups[1].rooms[0].key == "general"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe/London/", "/etc/localtime", "UTC "])
def test_a_bad_time_zone(tmp_path: Path, zone: str) -> None:
    text = replaced("timezone: Europe/London", f'timezone: "{zone}"')
    err = error_for(tmp_path, text)
    assert err.key_path == "community.timezone"
    assert err.line == line_of(text, "timezone:")
    assert "IANA time zone" in err.expected


def test_a_time_zone_folder_is_a_config_error(tmp_path: Path) -> None:
    text = replaced("timezone: Europe/London", "timezone: Europe")
    err = error_for(tmp_path, text)
    assert err.key_path == "community.timezone"


def test_a_bad_user_id_in_moderators(tmp_path: Path) -> None:
    text = replaced('    - "@mod:example.org"', '    - "mod"')
    err = error_for(tmp_path, text)
    assert err.key_path == "community.moderators"
    assert err.line == line_of(text, "moderators:")
    assert "@name:example.org" in err.expected
    assert "'mod'" in err.expected


def test_a_bad_user_id_in_a_groups_moderators(tmp_path: Path) -> None:
    text = replaced("    name: Research\n", '    name: Research\n    moderators: ["@Mod:x"]\n')
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[2].moderators"
    assert err.line == line_of(text, "@Mod:x")


def test_a_moderator_listed_twice(tmp_path: Path) -> None:
    text = replaced(
        '    - "@mod:example.org"', '    - "@mod:example.org"\n    - "@mod:example.org"'
    )
    err = error_for(tmp_path, text)
    assert err.key_path == "community.moderators"
    assert "twice" in err.expected


def test_a_bot_listed_twice_is_refused(tmp_path: Path) -> None:
    text = replaced(
        "    power_level: 100\n",
        '    power_level: 100\n  - user_id: "@bot:example.org"\n    power_level: 10\n',
    )
    err = error_for(tmp_path, text)
    assert err.key_path.startswith("bots")


def test_a_bad_admin_user_id(tmp_path: Path) -> None:
    text = replaced('user_id: "@hearth-admin:example.org"', 'user_id: "hearth-admin"')
    err = error_for(tmp_path, text)
    assert err.key_path == "community.admin.user_id"
    assert err.line == line_of(text, '"hearth-admin"')


@pytest.mark.parametrize("secret", ["access_token", "password"])
def test_an_inline_secret_in_admin_is_refused(tmp_path: Path, secret: str) -> None:
    text = replaced(
        "    access_token_file: secrets/admin.token",
        f"    access_token_file: secrets/admin.token\n    {secret}: syt_secret_value",
    )
    err = error_for(tmp_path, text)
    assert err.key_path == "community.admin"
    assert err.line == line_of(text, "admin:")
    assert f"'{secret}' must not be written inline" in err.expected
    assert "_file'" in err.expected
    # The secret itself is never repeated.
    assert "syt_secret_value" not in str(err)


def test_an_inline_access_token_names_access_token_file(tmp_path: Path) -> None:
    text = replaced(
        "    access_token_file: secrets/admin.token", "    access_token: syt_secret_value"
    )
    err = error_for(tmp_path, text)
    assert "access_token_file" in err.expected
    assert "syt_secret_value" not in str(err)


def test_a_missing_code_of_conduct(tmp_path: Path) -> None:
    text = replaced("  code_of_conduct: Be kind.\n", "")
    err = error_for(tmp_path, text)
    assert err.key_path == "community.code_of_conduct"
    assert err.expected == "required key is missing"
    assert err.line == line_of(text, "community:")


def test_an_empty_code_of_conduct(tmp_path: Path) -> None:
    err = error_for(tmp_path, replaced("code_of_conduct: Be kind.", 'code_of_conduct: ""'))
    assert err.key_path == "community.code_of_conduct"


def test_a_missing_admin_token_file(tmp_path: Path) -> None:
    text = replaced("    access_token_file: secrets/admin.token\n", "")
    err = error_for(tmp_path, text)
    assert err.key_path == "community.admin.access_token_file"
    assert err.expected == "required key is missing"


def test_an_unknown_join_rule(tmp_path: Path) -> None:
    text = replaced("    join: knock", "    join: public")
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[1].join"
    assert err.line == line_of(text, "join: public")
    assert "'invite', 'knock' or 'space'" in err.expected


def test_an_unknown_room_kind(tmp_path: Path) -> None:
    text = replaced("        kind: announcements", "        kind: broadcast")
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[0].rooms[1].kind"


def test_a_group_needs_at_least_one_room(tmp_path: Path) -> None:
    text = replaced(
        "    join: knock\n    rooms:\n      - key: general\n        name: General\n"
        "        kind: chat\n",
        "    join: knock\n    rooms: []\n",
    )
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[1].rooms"
    assert err.line == line_of(text, "rooms: []")


@pytest.mark.parametrize("level", [0, 101, -5])
def test_a_bot_level_out_of_range(tmp_path: Path, level: int) -> None:
    text = replaced("power_level: 100", f"power_level: {level}")
    err = error_for(tmp_path, text)
    assert err.key_path == "bots[0].power_level"
    assert err.line == line_of(text, "power_level:")


def test_a_homeserver_without_scheme(tmp_path: Path) -> None:
    text = replaced("homeserver: https://matrix.example.org/", "homeserver: matrix.example.org")
    err = error_for(tmp_path, text)
    assert err.key_path == "community.homeserver"
    assert "http" in err.expected


def test_a_name_that_is_too_long(tmp_path: Path) -> None:
    text = replaced("    name: Research\n", f"    name: {'x' * 256}\n")
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[2].name"


def test_a_yaml_duplicate_key_is_refused(tmp_path: Path) -> None:
    text = replaced("  timezone: Europe/London", "  timezone: Europe/London\n  timezone: UTC")
    err = error_for(tmp_path, text)
    assert "duplicate key 'timezone'" in err.expected
    assert err.line == line_of(text, "timezone: UTC")


def test_broken_yaml_is_refused_with_a_line(tmp_path: Path) -> None:
    text = replaced("  name: Test Circle", "  name: [Test Circle")
    err = error_for(tmp_path, text)
    assert "is not valid YAML" in err.expected
    assert err.line is not None


def test_a_list_at_the_top_level(tmp_path: Path) -> None:
    err = error_for(tmp_path, "- community\n")
    assert err.key_path == ""
    assert "mapping" in err.expected


def test_an_empty_file_names_the_missing_community(tmp_path: Path) -> None:
    err = error_for(tmp_path, "")
    assert err.key_path == "community"
    assert err.expected == "required key is missing"


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_community(tmp_path / "nope.yaml")
    assert "does not exist" in info.value.expected


def test_config_errors_exit_with_2(tmp_path: Path) -> None:
    err = error_for(tmp_path, replaced("key: circle", "key: Circle"))
    assert err.exit_code == 2
    assert err.key_path == "community.key"


def test_community_file_validates_without_yaml() -> None:
    cfg = CommunityFile.model_validate(
        {
            "community": {
                "key": "c",
                "name": "C",
                "homeserver": "http://localhost:8008",
                "admin": {"user_id": "@a:localhost", "access_token_file": "/t"},
                "code_of_conduct": "x",
                "crisis_resources": "y",
            },
            "groups": [{"key": "g", "name": "G"}],
        }
    )
    assert [r.key for r in cfg.groups[0].rooms] == ["general"]


# --- onboarding texts and questions ----------------------------------------------------------


def test_onboarding_defaults_need_nothing_in_the_file(tmp_path: Path) -> None:
    cfg = load_community(write(tmp_path, GOOD))
    assert cfg.onboarding.questions == ()
    assert cfg.onboarding.keep_answers_days == 30
    assert "display name" in cfg.onboarding.privacy_advice


def test_a_groups_questions_replace_the_communitys(tmp_path: Path) -> None:
    text = GOOD + "onboarding:\n  questions:\n    - How did you find us?\n"
    text = replaced(
        "    join: knock\n", '    join: knock\n    questions: ["Whom do you care for?"]\n', text
    )
    cfg = load_community(write(tmp_path, text))
    carers, research = cfg.group("carers"), cfg.group("research")
    assert cfg.questions_for(carers) == ("Whom do you care for?",)
    assert cfg.questions_for(research) == ("How did you find us?",)
    assert cfg.questions_for(None) == ("How did you find us?",)


@pytest.mark.parametrize(
    ("questions", "expected"),
    [
        ('["   "]', "a question is empty"),
        ("[" + ", ".join(['"q?"'] * 11) + "]", "at most 10 questions"),
        ('["' + "x" * 501 + '"]', "longer than 500 characters"),
    ],
    ids=["empty", "too-many", "too-long"],
)
def test_bad_questions_are_named_with_their_path(
    tmp_path: Path, questions: str, expected: str
) -> None:
    text = replaced("    join: knock\n", f"    join: knock\n    questions: {questions}\n")
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[1].questions"
    assert expected in err.expected


def test_answer_limits_are_bounded(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "onboarding:\n  keep_answers_days: 0\n")
    assert err.key_path == "onboarding.keep_answers_days"


def test_a_protection_pattern_that_does_not_compile_is_named_with_its_path(
    tmp_path: Path,
) -> None:
    block = "    join: knock\n    protections:\n      words:\n        patterns: ['ok', '(a']\n"
    text = replaced("    join: knock\n", block)
    err = error_for(tmp_path, text)
    assert err.key_path == "groups[1].protections.words.patterns"
    assert "pattern 2 ('(a') does not compile" in err.expected
    assert err.line == line_of(text, "patterns:")


def test_protections_default_to_gentle_steps(tmp_path: Path) -> None:
    cfg = load_community(write(tmp_path, GOOD))
    p = cfg.groups[0].protections
    assert [s.value for s in p.steps] == ["warn", "mute", "alert"]
    assert p.crisis.enabled
    assert p.flood.enabled
