"""Who may do what in the platform registry: the token service's decisions, pure and table-tested.

- a user pulls and pushes ``<username>/*``; pushing stops once the user is over their storage quota;
- everyone pulls ``ark-public/*`` and the repositories their owners made public; only admins push there;
- admins pull everything; nobody but the platform itself lists the catalogue or deletes through a token.

A refusal names what was refused and why, in words ``docker`` prints to the user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from arkserve.registry.names import PUBLIC_NAMESPACE, valid_repository
from arkserve.registry.tokens import Access


@dataclass(frozen=True)
class Requester:
    username: str
    is_admin: bool


@dataclass(frozen=True)
class Decision:
    granted: Access | None  # None: nothing of this scope
    refusal: str = ""  # why an asked-for action was refused ("" when all were granted)
    push_refused: bool = False


def wanted(asked: Access) -> set[str]:
    """The actions of ``asked`` this registry grants at all: ``*`` stands for pull and push."""
    return {"pull", "push"} if "*" in asked.actions else set(asked.actions) & {"pull", "push"}


def decide(who: Requester, asked: Access, *, is_public: Callable[[str], bool], over_quota: str = "") -> Decision:
    """What of ``asked`` ``who`` gets. ``is_public(repo)``: another user made it public; ``over_quota``:
    a message when ``who`` is over their storage quota (pushes to their namespace are then refused)."""
    if asked.type != "repository":
        return Decision(None, f"{asked.type}:{asked.name} is not available to users")
    name = asked.name
    if not valid_repository(name):
        return Decision(None, f'"{name}" is not a repository name of this registry: use <username>/<name> '
                              f"(yours: {who.username}/<name>)", push_refused="push" in asked.actions)
    namespace = name.split("/", 1)[0]
    own = namespace == who.username
    actions = wanted(asked)
    granted: list[str] = []
    refusal = "" if actions else f"only pull and push are granted on {name}, not {','.join(asked.actions)}"
    push_refused = False
    if "pull" in actions:
        if own or who.is_admin or namespace == PUBLIC_NAMESPACE or is_public(name):
            granted.append("pull")
        else:
            refusal = f"{name} is private to its owner (or does not exist)"
    if "push" in actions:
        if own and over_quota:
            refusal, push_refused = over_quota, True
        elif own or (namespace == PUBLIC_NAMESPACE and who.is_admin):
            granted.append("push")
        else:
            push_refused = True
            refusal = (f"only admins push to {PUBLIC_NAMESPACE}/" if namespace == PUBLIC_NAMESPACE else
                       f"{who.username} may push only to {who.username}/<name>, not to {name}")
    return Decision(Access("repository", name, tuple(granted)) if granted else None, refusal, push_refused)
