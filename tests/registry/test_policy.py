"""Who may pull and push what (registry.policy), image references (registry.names) and scope parsing: table tests."""

from __future__ import annotations

import pytest

from arkserve.registry.names import parse_reference, resolve_short, valid_repository
from arkserve.registry.policy import Requester, decide, wanted
from arkserve.registry.tokens import Access, parse_scope

ALICE, BOB, ADMIN = Requester("alice", False), Requester("bob", False), Requester("root", True)
PUBLIC = {"alice/shared"}


@pytest.mark.parametrize(("who", "name", "actions", "granted", "refused_push"), [
    (ALICE, "alice/app", ("pull", "push"), ("pull", "push"), False),
    (ALICE, "alice/deep/path", ("push",), ("push",), False),
    (BOB, "alice/app", ("pull",), None, False),
    (BOB, "alice/app", ("pull", "push"), None, True),
    (BOB, "alice/shared", ("pull", "push"), ("pull",), True),
    (BOB, "alice/shared", ("pull",), ("pull",), False),
    (BOB, "ark-public/pytorch", ("pull",), ("pull",), False),
    (BOB, "ark-public/pytorch", ("pull", "push"), ("pull",), True),
    (ADMIN, "ark-public/pytorch", ("pull", "push"), ("pull", "push"), False),
    (ADMIN, "alice/app", ("pull", "push"), ("pull",), True),  # admins read everything, write only their own
    (ALICE, "app", ("pull",), None, False),  # no namespace
    (ALICE, "alice/app", ("*",), ("pull", "push"), False),
    (ALICE, "alice/app", ("delete",), None, False),  # deletes go through the API, never a user's token
])
def test_decide(who: Requester, name: str, actions: tuple[str, ...], granted: tuple[str, ...] | None,
                refused_push: bool) -> None:
    d = decide(who, Access("repository", name, actions), is_public=lambda n: n in PUBLIC)
    assert (d.granted.actions if d.granted else None) == granted
    assert d.push_refused == refused_push
    if refused_push or granted is None:
        assert d.refusal


def test_quota_refuses_only_pushes_to_the_own_namespace() -> None:
    d = decide(ALICE, Access("repository", "alice/app", ("pull", "push")), is_public=lambda n: False,
               over_quota="storage quota exceeded")
    assert d.granted is not None and d.granted.actions == ("pull",)
    assert d.push_refused and "quota" in d.refusal


@pytest.mark.parametrize(("actions", "expected"), [
    (("pull",), {"pull"}), (("push",), {"push"}), (("pull", "push"), {"pull", "push"}), (("*",), {"pull", "push"}),
    (("pull", "*"), {"pull", "push"}), (("delete",), set()),
])
def test_wanted_is_what_decide_weighs(actions: tuple[str, ...], expected: set[str]) -> None:
    """The token service checks the quota for every scope wanted() says asks for push, "*" included."""
    assert wanted(Access("repository", "alice/app", actions)) == expected
    over = decide(ALICE, Access("repository", "alice/app", actions), is_public=lambda n: False, over_quota="over")
    assert over.push_refused == ("push" in expected)


def test_catalogue_is_not_for_users() -> None:
    assert decide(ADMIN, Access("registry", "catalog", ("*",)), is_public=lambda n: False).granted is None


@pytest.mark.parametrize(("scope", "access"), [
    ("repository:alice/app:pull,push", Access("repository", "alice/app", ("pull", "push"))),
    ("repository(plugin):alice/app:pull", Access("repository", "alice/app", ("pull",))),
    ("registry:catalog:*", Access("registry", "catalog", ("*",))),
    ("nonsense", None),
])
def test_parse_scope(scope: str, access: Access | None) -> None:
    assert parse_scope(scope) == access


@pytest.mark.parametrize(("ref", "host", "repo", "tag", "digest"), [
    ("127.0.0.1:7782/alice/app:v1", "127.0.0.1:7782", "alice/app", "v1", ""),
    ("localhost/alice/app", "localhost", "alice/app", "", ""),
    ("arkserve-test/busybox:1", "", "arkserve-test/busybox", "1", ""),
    ("app:v1", "", "app", "v1", ""),
    ("reg.example:5000/a/b@sha256:" + "0" * 64, "reg.example:5000", "a/b", "", "sha256:" + "0" * 64),
])
def test_parse_reference(ref: str, host: str, repo: str, tag: str, digest: str) -> None:
    r = parse_reference(ref)
    assert (r.host, r.repository, r.tag, r.digest) == (host, repo, tag, digest)
    assert str(r) == ref


def test_short_form_and_names() -> None:
    assert resolve_short("demo-flower:v1", "127.0.0.1:7782", "alice") == "127.0.0.1:7782/alice/demo-flower:v1"
    assert resolve_short("demo-flower", "127.0.0.1:7782", "alice") == "127.0.0.1:7782/alice/demo-flower:latest"
    assert resolve_short("arkserve-test/busybox:1", "127.0.0.1:7782", "alice") == "arkserve-test/busybox:1"
    assert resolve_short("127.0.0.1:7782/bob/x:1", "127.0.0.1:7782", "alice") == "127.0.0.1:7782/bob/x:1"
    assert valid_repository("alice/app") and valid_repository("ark-public/py.torch_2")
    assert not valid_repository("app") and not valid_repository("Alice/App") and not valid_repository("a//b")


def test_pull_progress_in_words() -> None:
    from arkserve.registry.progress import PullProgress

    p = PullProgress()
    for line in [{"status": "Pulling from alice/app", "id": "v1"},
                 {"status": "Pulling fs layer", "id": "aaa"}, {"status": "Pulling fs layer", "id": "bbb"},
                 {"status": "Downloading", "id": "aaa", "progressDetail": {"current": 600_000_000, "total": 10**9}},
                 {"status": "Downloading", "id": "bbb", "progressDetail": {"current": 12_000_000, "total": 4 * 10**8}}]:
        p.feed(line)
    assert p.summary() == "pulling 0 of 2 layers, 612.0 MB of 1.4 GB"
    p.feed({"status": "Pull complete", "id": "aaa"})
    p.feed({"status": "Already exists", "id": "bbb"})
    p.feed({"status": "Digest: sha256:abc"})
    assert p.summary() == "pulled 2 of 2 layers, 1.4 GB of 1.4 GB"
