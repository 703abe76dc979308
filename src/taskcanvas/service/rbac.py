"""Who may do what: roles, actions, resources, and the one decision function.

Every route asks :func:`authorize` (or :func:`require`) before it acts, and list queries filter
with :func:`list_scope`; both read the same table, :data:`RULES`, so a list never shows a row
that a direct read would refuse.

A principal holds *grants*: each is a role and a domain.

- a site role (owner, auditor) reaches every resource;
- an organization role (admin, member, auditor) reaches resources of that organization only;
- every signed-in user also holds the ``everyone`` grant (their own profile and tokens).

A rule gives a role an action on a kind of resource at a scope: ``ANY`` resource in the grant's
domain, or only the principal's ``OWN`` ones (``resource.owner_id == principal.user_id``).
Grants add up: one that allows is enough.

A refusal is :attr:`Decision.HIDDEN` (404, the object is not even admitted to exist) unless the
caller can already see the resource *and* coder answers 403 for that action: the lifecycle
actions that go through coder's workspace-build path (delete, pause, resume, cancel) and
creating a task or an agent in an organization the caller belongs to. Reading the audit log
without the right is always 403, as in coder.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final
from uuid import UUID

from taskcanvas.service.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from taskcanvas.service.auth import Principal


class SiteRole(StrEnum):
    """A role over the whole site."""

    OWNER = "owner"
    AUDITOR = "auditor"


class OrgRole(StrEnum):
    """A user's role in one organization (one per membership)."""

    ADMIN = "admin"
    MEMBER = "member"
    AUDITOR = "auditor"


class Role(StrEnum):
    """The roles the rules are written for; site and organization roles map onto these."""

    OWNER = "owner"
    ORG_ADMIN = "org_admin"
    MEMBER = "member"
    AUDITOR = "auditor"


class Action(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SEND = "send"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    READ_AUDIT = "read_audit"
    MANAGE_USERS = "manage_users"
    MANAGE_TOKENS = "manage_tokens"


class ResourceKind(StrEnum):
    TASK = "task"
    AGENT = "agent"
    AGENT_VERSION = "agent_version"
    SESSION = "session"
    RUN = "run"
    AUDIT = "audit"
    USER = "user"
    TOKEN = "token"
    ORGANIZATION = "organization"


class Scope(StrEnum):
    ANY = "any"
    """Every resource in the grant's domain."""
    OWN = "own"
    """Only resources whose ``owner_id`` is the principal."""


class Decision(StrEnum):
    ALLOWED = "allowed"
    HIDDEN = "hidden"
    """Refused, and answered as if the resource did not exist (404)."""
    FORBIDDEN = "forbidden"
    """Refused openly (403): the caller can already see the resource."""

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOWED


@dataclass(frozen=True)
class Resource:
    """What an action is about, as far as authorization cares.

    ``org_id`` is the organization the resource lives in (``None`` for site-level things: user
    accounts, tokens, site audit events, a new organization). ``owner_id`` is the user it belongs
    to: a task's or agent's owner, a token's user, the user itself for a user, the actor for an
    audit event. Children carry their parent's: a session or run the task's, an agent version
    the agent's. For ``create``, describe the resource as it will be (owner = the user it is
    created for).
    """

    kind: ResourceKind
    org_id: UUID | None = None
    owner_id: UUID | None = None


ACTIONS: Final[Mapping[ResourceKind, frozenset[Action]]] = {
    ResourceKind.TASK: frozenset({
        Action.READ, Action.CREATE, Action.UPDATE, Action.DELETE,
        Action.SEND, Action.PAUSE, Action.RESUME, Action.CANCEL,
    }),
    ResourceKind.AGENT: frozenset({Action.READ, Action.CREATE, Action.UPDATE, Action.DELETE}),
    ResourceKind.AGENT_VERSION: frozenset({Action.READ, Action.CREATE}),
    ResourceKind.SESSION: frozenset({Action.READ, Action.CREATE, Action.DELETE, Action.SEND}),
    ResourceKind.RUN: frozenset({Action.READ, Action.CANCEL}),
    ResourceKind.AUDIT: frozenset({Action.READ_AUDIT}),
    ResourceKind.USER: frozenset({Action.READ, Action.UPDATE, Action.MANAGE_USERS}),
    ResourceKind.TOKEN: frozenset({Action.READ, Action.MANAGE_TOKENS}),
    ResourceKind.ORGANIZATION: frozenset({Action.READ, Action.CREATE, Action.UPDATE, Action.DELETE}),
}
"""The actions that mean something for each kind; asking about any other pair is a bug."""

_READS: Final = frozenset({Action.READ, Action.READ_AUDIT})

Rules = Mapping[ResourceKind, Mapping[Action, Scope]]

EVERYONE: Final = "everyone"
"""The rules key for what every signed-in user may do, whatever their roles."""

_ANY, _OWN = Scope.ANY, Scope.OWN
_R, _A = ResourceKind, Action

RULES: Final[Mapping[str, Rules]] = {
    Role.OWNER: {kind: dict.fromkeys(actions, _ANY) for kind, actions in ACTIONS.items()},
    Role.AUDITOR: {
        kind: dict.fromkeys(actions & _READS, _ANY) for kind, actions in ACTIONS.items() if actions & _READS
    },
    # Everything inside the organization, except deleting it; user accounts, tokens and new
    # organizations are site-level (org_id None), which an organization grant never reaches.
    Role.ORG_ADMIN: {
        _R.TASK: dict.fromkeys(ACTIONS[_R.TASK], _ANY),
        _R.AGENT: dict.fromkeys(ACTIONS[_R.AGENT], _ANY),
        _R.AGENT_VERSION: dict.fromkeys(ACTIONS[_R.AGENT_VERSION], _ANY),
        _R.SESSION: dict.fromkeys(ACTIONS[_R.SESSION], _ANY),
        _R.RUN: dict.fromkeys(ACTIONS[_R.RUN], _ANY),
        _R.AUDIT: {_A.READ_AUDIT: _ANY},
        _R.USER: {_A.READ: _ANY, _A.MANAGE_USERS: _ANY},
        _R.ORGANIZATION: {_A.READ: _ANY, _A.UPDATE: _ANY},
    },
    # Own tasks, sessions and runs; the organization's agents are readable by every member
    # (coder's templates are), editable by their owner (and admins).
    Role.MEMBER: {
        _R.TASK: dict.fromkeys(ACTIONS[_R.TASK], _OWN),
        _R.AGENT: {_A.READ: _ANY, _A.CREATE: _OWN, _A.UPDATE: _OWN, _A.DELETE: _OWN},
        _R.AGENT_VERSION: {_A.READ: _ANY, _A.CREATE: _OWN},
        _R.SESSION: dict.fromkeys(ACTIONS[_R.SESSION], _OWN),
        _R.RUN: {_A.READ: _OWN, _A.CANCEL: _OWN},
        _R.USER: {_A.READ: _ANY},
        _R.ORGANIZATION: {_A.READ: _ANY},
    },
    EVERYONE: {
        _R.USER: {_A.READ: _OWN, _A.UPDATE: _OWN},
        _R.TOKEN: {_A.READ: _OWN, _A.MANAGE_TOKENS: _OWN},
    },
}
"""role → resource kind → action → scope. A missing entry is a refusal."""

_FORBID_IF_VISIBLE: Final = frozenset({
    (_R.TASK, _A.CREATE), (_R.TASK, _A.DELETE), (_R.TASK, _A.PAUSE), (_R.TASK, _A.RESUME), (_R.TASK, _A.CANCEL),
    (_R.RUN, _A.CANCEL), (_R.AGENT, _A.CREATE), (_R.ORGANIZATION, _A.CREATE),
})
"""Refusals answered 403 when the caller can see the resource (for ``create``: its organization)."""

_ALWAYS_FORBID: Final = frozenset({(_R.AUDIT, _A.READ_AUDIT)})
"""Refusals always answered 403: the audit log's existence is no secret."""

_SITE_ROLES: Final[Mapping[SiteRole, Role]] = {SiteRole.OWNER: Role.OWNER, SiteRole.AUDITOR: Role.AUDITOR}
_ORG_ROLES: Final[Mapping[OrgRole, Role]] = {
    OrgRole.ADMIN: Role.ORG_ADMIN, OrgRole.MEMBER: Role.MEMBER, OrgRole.AUDITOR: Role.AUDITOR,
}


def authorize(principal: Principal, action: Action, resource: Resource) -> Decision:
    """May ``principal`` do ``action`` to ``resource``? Allowed, hidden (404) or forbidden (403)."""
    if action not in ACTIONS[resource.kind]:
        raise ValueError(f"{action.value!r} is not an action on a {resource.kind.value}")
    if _granted(principal, action, resource):
        return Decision.ALLOWED
    key = (resource.kind, action)
    if key in _ALWAYS_FORBID or (key in _FORBID_IF_VISIBLE and _visible(principal, action, resource)):
        return Decision.FORBIDDEN
    return Decision.HIDDEN


def require(principal: Principal, action: Action, resource: Resource) -> None:
    """:func:`authorize`, raising :class:`NotFound` or :class:`Forbidden` when refused."""
    decision = authorize(principal, action, resource)
    if decision is Decision.HIDDEN:
        raise NotFound()
    if decision is Decision.FORBIDDEN:
        raise Forbidden()


@dataclass(frozen=True)
class ListScope:
    """Which resources of one kind a principal may see (or act on): the WHERE clause of a list.

    A resource matches if ``everything``, or its org is in ``org_ids``, or it is the principal's
    own and (``own_anywhere`` or its org is in ``own_org_ids``). The store translates this into
    SQL; :meth:`matches` is the same test in Python.
    """

    user_id: UUID
    everything: bool = False
    org_ids: frozenset[UUID] = frozenset()
    own_org_ids: frozenset[UUID] = frozenset()
    own_anywhere: bool = False

    @property
    def empty(self) -> bool:
        return not (self.everything or self.org_ids or self.own_org_ids or self.own_anywhere)

    def matches(self, resource: Resource) -> bool:
        if self.everything or resource.org_id in self.org_ids:
            return True
        own = resource.owner_id == self.user_id
        return own and (self.own_anywhere or resource.org_id in self.own_org_ids)


def list_scope(principal: Principal, action: Action, kind: ResourceKind) -> ListScope:
    """The resources of ``kind`` on which ``principal`` may do ``action``, for list queries."""
    if action not in ACTIONS[kind]:
        raise ValueError(f"{action.value!r} is not an action on a {kind.value}")
    everything, own_anywhere = False, False
    org_ids: set[UUID] = set()
    own_org_ids: set[UUID] = set()
    for role, domain in _grants(principal):
        scope = RULES[role].get(kind, {}).get(action)
        if scope is None:
            continue
        if domain is None:
            everything |= scope is Scope.ANY
            own_anywhere |= scope is Scope.OWN
        else:
            (org_ids if scope is Scope.ANY else own_org_ids).add(domain)
    return ListScope(
        user_id=principal.user_id,
        everything=everything,
        org_ids=frozenset(org_ids),
        own_org_ids=frozenset(own_org_ids - org_ids),
        own_anywhere=own_anywhere,
    )


def _grants(principal: Principal) -> Iterator[tuple[str, UUID | None]]:
    """(rules key, domain) pairs; domain ``None`` is the whole site."""
    yield EVERYONE, None
    if principal.site_role is not None:
        yield _SITE_ROLES[principal.site_role], None
    for org_id, org_role in principal.org_roles.items():
        yield _ORG_ROLES[org_role], org_id


def _granted(principal: Principal, action: Action, resource: Resource) -> bool:
    for role, domain in _grants(principal):
        scope = RULES[role].get(resource.kind, {}).get(action)
        if scope is None or (domain is not None and resource.org_id != domain):
            continue
        if scope is Scope.ANY or resource.owner_id == principal.user_id:
            return True
    return False


def _visible(principal: Principal, action: Action, resource: Resource) -> bool:
    """Can the caller see what it is refused? For ``create``, that is the organization it targets."""
    if action is Action.CREATE:
        if resource.org_id is None:
            return True
        return _granted(principal, Action.READ, Resource(ResourceKind.ORGANIZATION, org_id=resource.org_id))
    return _granted(principal, Action.READ, resource)
