"""Imports between Hearth's packages run one way, in the order the README states.

Every import counts, wherever it is written: at the top of a module, inside a
function, under ``if TYPE_CHECKING:``. A deferred import still ties the two
packages together; it only hides the tie until run time.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = ("bots", "provisioning", "bridge")
# Production code never reaches into the tests or the benchmarks.
NEVER_IMPORTED = ("tests", "bench")


def module_files() -> dict[str, Path]:
    """Dotted module name → file, for every module of the top packages."""
    found: dict[str, Path] = {}
    for top in TOP:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = module_files()


def package_of(module: str) -> str:
    """The deepest folder with an ``__init__.py`` holding *module*."""
    if MODULES[module].name == "__init__.py":
        return module
    return module.rpartition(".")[0]


def imported_modules(module: str) -> set[str]:
    """Every module of ours that *module* imports, anywhere in its code."""
    path = MODULES[module]
    package = package_of(module)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from a import b` imports module a.b when there is one, else a name from a.
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.add(candidate if candidate in MODULES else source)
    return found


def our_imports() -> dict[str, set[str]]:
    """module → the modules of ours it imports (the nearest existing one for a name)."""
    edges: dict[str, set[str]] = {}
    for module in MODULES:
        targets = set()
        for name in imported_modules(module):
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        edges[module] = targets
    return edges


def related(a: str, b: str) -> bool:
    """True when one package contains the other (or they are the same)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in *graph* as a path whose first and last nodes are the same."""
    state: dict[str, int] = {}  # 1: on the current path, 2: explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def package_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]]]:
    """Package → packages it imports, leaving out its own ancestors and
    descendants, with an example import (``module -> module``) for each edge."""
    graph: dict[str, set[str]] = defaultdict(set)
    why: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, targets in our_imports().items():
        src = package_of(module)
        for target in sorted(targets):
            dst = package_of(target)
            if not related(src, dst):
                graph[src].add(dst)
                why[src, dst].append(f"{module} -> {target}")
    return graph, why


def test_no_two_packages_import_each_other_in_a_circle() -> None:
    graph, why = package_graph()
    cycle = find_cycle(graph)
    if cycle:
        steps = [f"  {a} -> {b}   ({why[a, b][0]})" for a, b in itertools.pairwise(cycle)]
        pytest.fail("packages import each other in a circle:\n" + "\n".join(steps))


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above would pass vacuously if find_cycle never found one."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def documented_layers() -> list[list[str]]:
    """The README's layer list (Layout section), lowest first: each item's
    paths, as written before the item's colon."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    layers = []
    for line in layout.splitlines():
        item = re.match(r"(\d+)\. (.*?):", line)
        if item:
            assert int(item[1]) == len(layers) + 1, f"README layers out of sequence at {line!r}"
            layers.append(re.findall(r"`([^`]+)`", item[2]))
    return layers


def layer_of(module: str, layers: list[list[str]]) -> int | None:
    """The layer whose longest path is a prefix of *module*'s file."""
    rel = MODULES[module].relative_to(ROOT).as_posix()
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, paths in enumerate(layers):
        for p in paths:
            if (rel == p or (p.endswith("/") and rel.startswith(p))) and (
                best is None or len(p) > best[0]
            ):
                best = (len(p), index)
    return None if best is None else best[1]


def test_readme_states_the_layer_order_with_real_paths() -> None:
    layers = documented_layers()
    assert len(layers) >= 3, "README's Layout section should list the layers, lowest first"
    for paths in layers:
        assert paths, "each README layer names its folders or files in backquotes"
        for p in paths:
            assert (ROOT / p).exists(), f"README layer names {p}, which does not exist"


def test_imports_follow_the_documented_layer_order() -> None:
    """A module imports only from its own layer or lower ones. Unlike the
    circle check this holds between a package and its own subpackages too."""
    layers = documented_layers()
    problems = []
    for module, targets in sorted(our_imports().items()):
        for target in sorted(targets):
            lo, hi = layer_of(module, layers), layer_of(target, layers)
            if lo is None or hi is None:
                missing = module if lo is None else target
                problems.append(f"{MODULES[missing].relative_to(ROOT)} is in no README layer")
            elif hi > lo:
                problems.append(
                    f"{module} (layer {lo + 1}) imports {target} (layer {hi + 1}, higher)"
                )
    if problems:
        pytest.fail(
            "imports against the README's layer order:\n" + "\n".join(sorted(set(problems)))
        )


def test_production_code_never_imports_tests_or_bench() -> None:
    bad = sorted(
        f"{module} imports {name}"
        for module in MODULES
        for name in imported_modules(module)
        if name.split(".")[0] in NEVER_IMPORTED
    )
    if bad:
        pytest.fail("\n".join(bad))


def test_the_synapse_module_imports_nothing_else_of_hearth() -> None:
    """hearth_synapse runs inside Synapse, whose environment on the server
    holds only this package of Hearth's."""
    bad = []
    for path in sorted((ROOT / "hearth_synapse").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            bad += [
                f"{path.relative_to(ROOT)} imports {name}"
                for name in names
                if name.split(".")[0] in (*TOP, *NEVER_IMPORTED)
            ]
    assert (ROOT / "hearth_synapse" / "__init__.py").exists()
    assert bad == []


# --- one way to the homeserver ---

TRANSPORT = "bots/matrix/transport.py"
# nio's methods that change something on the homeserver (or in its crypto
# state there). Only the outbox performs them, and the crypto channel.
NIO_WRITES = frozenset(
    {
        "room_send",
        "room_redact",
        "room_put_state",
        "room_kick",
        "room_ban",
        "room_unban",
        "room_invite",
        "join",
        "room_leave",
        "room_forget",
        "room_create",
        "upload",
        "keys_upload",
        "keys_query",
        "keys_claim",
        "send_to_device_messages",
        "to_device",
        "request_room_key",
        "share_group_session",
        "set_displayname",
        "set_avatar",
        "room_typing",
        "room_read_markers",
        "update_receipt_marker",
    }
)
MAY_WRITE_THROUGH_NIO = ("bots/framework/outbox/", "bots/framework/trust/channel.py")


def bots_files() -> list[tuple[str, ast.AST]]:
    out = []
    for path in sorted((ROOT / "bots").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        out.append((rel, ast.parse(path.read_text(encoding="utf-8"), rel)))
    return out


def sessions_made(tree: ast.AST) -> list[int]:
    """Lines naming aiohttp's ClientSession (or its one-shot ``aiohttp.request``)."""

    def names_one(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            return node.value.id == "aiohttp" and node.attr in ("ClientSession", "request")
        if isinstance(node, ast.Name):
            return node.id == "ClientSession"
        return isinstance(node, ast.alias) and node.name == "ClientSession"

    return [getattr(node, "lineno", 0) for node in ast.walk(tree) if names_one(node)]


def nio_writes(tree: ast.AST) -> list[tuple[int, str]]:
    """Calls of nio's writing methods on something called ``client``."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        name = receiver.id if isinstance(receiver, ast.Name) else getattr(receiver, "attr", "")
        if name == "client" and node.func.attr in NIO_WRITES:
            found.append((node.lineno, node.func.attr))
    return found


def test_only_the_transport_opens_http_sessions() -> None:
    bad = [
        f"{rel}:{line}"
        for rel, tree in bots_files()
        if rel != TRANSPORT
        for line in sessions_made(tree)
    ]
    assert bad == [], "HTTP outside bots/matrix/transport.py: " + ", ".join(bad)


def test_only_the_outbox_and_the_crypto_channel_write_through_nio() -> None:
    bad = [
        f"{rel}:{line} {name}"
        for rel, tree in bots_files()
        if not rel.startswith(MAY_WRITE_THROUGH_NIO)
        for line, name in nio_writes(tree)
    ]
    assert bad == [], "nio writes outside the outbox and the crypto channel: " + ", ".join(bad)


def test_the_effect_checks_find_effects() -> None:
    """The two checks above would pass vacuously if they found nothing."""
    made = ast.parse(
        "import aiohttp\nasync def f():\n    async with aiohttp.ClientSession():\n        pass"
    )
    assert sessions_made(made) == [3]
    sent = ast.parse("async def f(self):\n    await self.client.room_send('!r', 't', {})")
    assert nio_writes(sent) == [(2, "room_send")]
    assert nio_writes(ast.parse("', '.join(['a'])")) == []


def test_each_built_in_effect_has_exactly_one_performer() -> None:
    from bots.framework.actions import BUILTIN, Effect
    from bots.framework.outbox.effector import PERFORMER_MODULES
    from bots.framework.outbox.registry import PERFORMERS

    assert PERFORMER_MODULES
    effects = {t for t in BUILTIN if issubclass(t, Effect)}
    assert effects == set(PERFORMERS), "an effect without a performer, or the reverse"


# --- the admin agent only as actions ---

AGENT_CLIENT = "bots.adminagent.client"
# A feature's performers (Feature.performers), the one module of it that
# may reach the agent: the outbox calls them with the feature's actions.
PERFORMERS_MODULE = re.compile(r"bots\.(\w+)\.performers")


def test_only_features_performers_reach_the_admin_agent() -> None:
    """A handler, job or service asks the admin agent for something by
    returning an action (a read too: its answer comes back as a record), so
    every request is queued, retried and recorded as any other action. Only
    the outbox's performers of those actions open the agent's client."""
    imports = our_imports()
    reaching = sorted(m for m, targets in imports.items() if AGENT_CLIENT in targets)
    assert reaching, "the check would pass vacuously: nothing reaches the agent"
    bad = [
        m
        for m in reaching
        if not (m.startswith("bots.adminagent.") or PERFORMERS_MODULE.fullmatch(m))
    ]
    assert bad == [], "the admin agent reached outside a performer: " + ", ".join(bad)


def test_features_performers_are_only_the_outboxs() -> None:
    """Each feature's performers module is its Feature.performers, imported
    by its feature.py alone: no handler calls a performer itself."""
    import importlib

    modules = [m for m in MODULES if PERFORMERS_MODULE.fullmatch(m)]
    assert modules, "no feature declares performers"
    for module in modules:
        feature = module.rpartition(".")[0] + ".feature"
        declared = importlib.import_module(feature).FEATURE.performers
        assert declared is importlib.import_module(module).PERFORMERS, module
        importers = sorted(m for m, targets in our_imports().items() if module in targets)
        assert importers == [feature], f"{module} imported by {importers}"
