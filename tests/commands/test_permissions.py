"""Permission ids, permittee grammar, inheritance, persistence, and how the engine applies them."""

from __future__ import annotations

from pathlib import Path

import pytest

from plughost.bot.commands import CommandEngine, CommandSender, PermissionService, ResultKind
from plughost.bot.config import CommandsConfig
from plughost.errors import ConfigError, StateFileError
from plughost.sdk.permissions import PermissionId, PermissionSyntaxError, PermitteeId

from .conftest import Lab


def pid(text: str) -> PermissionId:
    return PermissionId.parse(text)


def who(text: str) -> PermitteeId:
    return PermitteeId.parse(text)


@pytest.mark.parametrize("text", ["a:b", "*:*", "my-plugin:command.greet", "console:*"])
def test_permission_ids_parse_and_print(text: str) -> None:
    assert str(pid(text)) == text


@pytest.mark.parametrize("text", ["", "ab", ":b", "a:", "a b:c", "a:b c", "a:b:c"])
def test_bad_permission_ids(text: str) -> None:
    with pytest.raises(PermissionSyntaxError, match="invalid permission id"):
        pid(text)


def test_permission_lineage() -> None:
    assert [str(p) for p in pid("demo:command.x").lineage()] == ["demo:command.x", "demo:*", "*:*"]
    assert [str(p) for p in pid("*:*").lineage()] == ["*:*"]


@pytest.mark.parametrize(
    ("text", "parents"),
    [
        ("*", []),
        ("console", []),
        ("g*", ["*"]),
        ("g12", ["g*"]),
        ("u*", ["*"]),
        ("u5", ["u*"]),
        ("f*", ["u*"]),
        ("f5", ["u5", "f*"]),
        ("s5", ["u5", "s*"]),
        ("m*", ["u*"]),
        ("m12.*", ["m*", "g12"]),
        ("m12.5", ["m12.*", "u5"]),
        ("t*", ["u*"]),
        ("t12.*", ["t*", "m12.*"]),
        ("t12.5", ["t12.*", "u5"]),
    ],
)
def test_permittee_grammar_and_parents(text: str, parents: list[str]) -> None:
    assert [str(p) for p in who(text).parents] == parents


@pytest.mark.parametrize("text", ["", "x1", "g", "m12", "m*.5", "g1.2", "u-1", "f1.*", "console2", "**"])
def test_bad_permittees(text: str) -> None:
    with pytest.raises(PermissionSyntaxError, match="invalid permittee id"):
        who(text)


def test_member_inherits_from_group_member_user_and_any() -> None:
    lineage = {str(p) for p in who("m12.5").lineage()}
    assert lineage == {"m12.5", "m12.*", "u5", "m*", "g12", "u*", "g*", "*"}
    assert "console" not in lineage


def test_checks_follow_both_lineages() -> None:
    service = PermissionService()
    perm = pid("demo:command.greet")
    service.register(perm)
    assert not service.has(who("m1.2"), perm)
    service.permit(who("m1.*"), pid("demo:*"))
    assert service.has(who("m1.2"), perm)  # permittee parent + permission parent
    assert service.has(who("t1.9"), perm)  # temp chats of group 1 ⊂ m1.*
    assert not service.has(who("m2.2"), perm)
    assert not service.has(who("f2"), perm)
    service.permit(who("*"), pid("*:*"))
    assert service.has(who("s77"), pid("anything:else"))


def test_console_holds_root_and_star_excludes_console() -> None:
    service = PermissionService()
    assert service.has(who("console"), pid("any:thing"))
    assert who("console") not in who("u1").lineage()


def test_cancel_and_recursive_cancel() -> None:
    service = PermissionService()
    member = who("m1.2")
    service.permit(member, pid("demo:*"))
    service.permit(member, pid("demo:command.a"))
    service.permit(member, pid("other:command.b"))
    assert service.cancel(member, pid("demo:*")) == 1
    assert service.has(member, pid("demo:command.a"))
    service.permit(member, pid("demo:*"))
    assert service.cancel(member, pid("demo:*"), recursive=True) == 2
    assert not service.has(member, pid("demo:command.a"))
    assert service.granted(member) == [pid("other:command.b")]
    assert service.cancel(member, pid("nothing:here")) == 0


def test_a_check_already_answered_sees_every_later_change(tmp_path: Path) -> None:
    """Answers are remembered until the grants change: each change is seen by the next check."""
    path = tmp_path / "permissions.toml"
    service = PermissionService(path, default_permittees=["g7"])
    member, command = who("m7.2"), pid("demo:command.x")
    assert not service.has(member, command)
    service.permit(who("g7"), pid("demo:*"))  # a grant to an ancestor of both ids
    assert service.has(member, command)
    assert service.cancel(who("g7"), pid("demo:*")) == 1
    assert not service.has(member, command)
    service.register(command, grant_defaults=True)  # the default permittee (the member's group) gets it
    assert service.has(member, command)
    service.permit(member, pid("other:*"))
    assert service.cancel(who("g7"), pid("demo:*"), recursive=True) == 1
    assert not service.has(member, command)
    assert service.has(member, pid("other:command.y"))


def test_a_grant_that_cannot_be_saved_leaves_the_answers_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = PermissionService(tmp_path / "permissions.toml")
    member, command = who("m7.2"), pid("demo:command.x")
    assert not service.has(member, command)

    def cannot_write() -> None:
        raise StateFileError("cannot write permissions.toml: disk full")

    monkeypatch.setattr(service, "_save", cannot_write)
    with pytest.raises(StateFileError, match="disk full"):
        service.permit(member, command)
    assert not service.has(member, command) and service.granted(member) == []


def test_grants_persist_atomically_and_survive_restart(tmp_path: Path) -> None:
    path = tmp_path / "permissions.toml"
    service = PermissionService(path)
    service.permit(who("m1.2"), pid("demo:*"))
    service.permit(who("g7"), pid("demo:command.x"))
    restored = PermissionService(path)
    assert restored.grants() == service.grants()
    assert restored.has(who("m7.3"), pid("demo:command.x"))
    assert (tmp_path / "permissions.toml.bak").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".permissions.toml.")]


def test_default_permittees_get_new_commands_once_and_cancel_sticks(tmp_path: Path) -> None:
    path = tmp_path / "permissions.toml"
    perm = pid("demo:command.x")
    service = PermissionService(path, default_permittees=["*"])
    service.register(perm, grant_defaults=True)
    assert service.has(who("f1"), perm)
    service.cancel(who("*"), perm)
    restored = PermissionService(path, default_permittees=["*"])
    restored.register(perm, grant_defaults=True)
    assert not restored.has(who("f1"), perm)


@pytest.mark.parametrize(
    "content", ["grants = [", '[grants]\n"x:y" = ["a:b"]\n', '[grants]\n"*" = ["nope"]\n', "grants = 3\n"]
)
def test_corrupt_file_is_a_clear_error_and_left_untouched(tmp_path: Path, content: str) -> None:
    path = tmp_path / "permissions.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=r"permissions\.toml: cannot read permission grants"):
        PermissionService(path)
    assert path.read_text() == content


ROLES = """
@plugin.command("open")
def open_() -> str:
    return "open"

@plugin.command("adm", role="admin")
def adm() -> str:
    return "adm"

@plugin.command("own", role="owner")
def own() -> str:
    return "own"

@plugin.command("grp", scope="group")
def grp() -> str:
    return "grp"

@plugin.command("priv", scope="private", role="admin")
def priv() -> str:
    return "priv"

@plugin.command("typed")
def typed(n: int) -> str:
    return str(n)
"""


@pytest.fixture
async def roles(lab: Lab) -> CommandEngine:
    await lab.load("r", ROLES)
    return lab.engine(CommandsConfig(owners=[1], admins=[2]), PermissionService(default_permittees=["*"]))


async def test_roles(roles: CommandEngine) -> None:
    owner, admin, user = CommandSender.friend(1), CommandSender.friend(2), CommandSender.friend(3)
    group_admin = CommandSender.member(9, 4, role="admin")
    group_owner = CommandSender.member(9, 5, role="owner")
    plain_member = CommandSender.member(9, 6)
    for sender, allowed in [
        (owner, {"open", "adm", "own"}),
        (admin, {"open", "adm"}),
        (user, {"open"}),
        (group_admin, {"open", "adm"}),
        (group_owner, {"open", "adm"}),
        (plain_member, {"open"}),
        (CommandSender.console(), {"open", "adm", "own"}),
    ]:
        for name in ("open", "adm", "own"):
            result = await roles.execute_command(sender, f"/{name}")
            if name in allowed:
                assert result.kind is ResultKind.SUCCESS, (sender, name)
            else:
                assert result.kind is ResultKind.PERMISSION_DENIED, (sender, name)
                assert result.text == "permission denied for this command"


async def test_scope_is_silent_and_checked_after_role(roles: CommandEngine) -> None:
    friend, member = CommandSender.friend(3), CommandSender.member(9, 6)
    assert (await roles.execute_command(member, "/grp")).kind is ResultKind.SUCCESS
    wrong = await roles.execute_command(friend, "/grp")
    assert (wrong.kind, wrong.replies) == (ResultKind.WRONG_SCOPE, [])
    assert (await roles.execute_command(CommandSender.temp(9, 6), "/grp")).kind is ResultKind.WRONG_SCOPE
    # role first: a plain member is denied (with a reply) before the scope would silence it
    denied = await roles.execute_command(member, "/priv")
    assert denied.kind is ResultKind.PERMISSION_DENIED and denied.text
    admin_in_group = CommandSender.member(9, 2)
    assert (await roles.execute_command(admin_in_group, "/priv")).kind is ResultKind.WRONG_SCOPE
    assert (await roles.execute_command(CommandSender.friend(2), "/priv")).kind is ResultKind.SUCCESS


async def test_result_order(lab: Lab) -> None:
    await lab.load("r", ROLES)
    engine = lab.engine(permissions=PermissionService())  # Mirai-strict: nobody but the console
    friend = CommandSender.friend(3)
    # signature mismatch is reported before permission denied
    assert (await engine.execute_command(friend, "/typed")).kind is ResultKind.SIGNATURE_MISMATCH
    # permission denied before the argument is parsed
    denied = await engine.execute_command(friend, "/typed abc")
    assert denied.kind is ResultKind.PERMISSION_DENIED
    assert denied.text == "permission denied for this command (needs r:command.typed)"
    engine.permissions.permit(friend.permittee, PermissionId.parse("r:command.typed"))
    assert (await engine.execute_command(friend, "/typed abc")).kind is ResultKind.PARSE_ERROR
    assert (await engine.execute_command(friend, "/typed 5")).text == "5"


async def test_registration_creates_plugin_and_command_permissions(lab: Lab) -> None:
    await lab.load("r", ROLES)
    engine = lab.engine()
    registered = {str(p) for p in engine.permissions.registered()}
    assert {"*:*", "r:*", "r:command.open", "r:command.typed"} <= registered
