"""The authorization table: every role × action × resource × relation, with the expected decision.

Each row reads: resource kind, action, where the resources live, then one three-letter cell per
role for the resource that is the principal's **own**, a **peer**'s in the same organization, and
a **stranger**'s in another organization.  A = allowed, H = hidden (404), F = forbidden (403).

Placement ``org``: own and peer resources in org A (the principal's), the stranger's in org B.
Placement ``site``: no organization at all (user accounts, tokens, site audit events, new orgs).
For organizations themselves there is no owner: own and peer are org A, stranger is org B.

The principals: ``owner`` (site owner, no membership), ``org_admin`` (admin of A), ``member``
(member of A), ``auditor`` (site auditor, no membership), ``org_auditor`` (auditor of A).
"""

from __future__ import annotations

import itertools
from uuid import UUID, uuid4

import pytest

from taskcanvas.service import errors
from taskcanvas.service.auth import Principal
from taskcanvas.service.rbac import (
    ACTIONS,
    RULES,
    Action,
    Decision,
    OrgRole,
    Resource,
    ResourceKind,
    Role,
    SiteRole,
    authorize,
    list_scope,
    require,
)

ORG_A, ORG_B = UUID(int=0xA), UUID(int=0xB)
ME, PEER, STRANGER = UUID(int=1), UUID(int=2), UUID(int=3)

PRINCIPALS = {
    "owner": Principal(ME, site_role=SiteRole.OWNER),
    "org_admin": Principal(ME, org_roles={ORG_A: OrgRole.ADMIN}),
    "member": Principal(ME, org_roles={ORG_A: OrgRole.MEMBER}),
    "auditor": Principal(ME, site_role=SiteRole.AUDITOR),
    "org_auditor": Principal(ME, org_roles={ORG_A: OrgRole.AUDITOR}),
}
ROLES = list(PRINCIPALS)

# kind, action, placement,            owner  org_admin member auditor org_auditor
TABLE: list[tuple[str, str, str, str, str, str, str, str]] = [
    ("task", "read", "org",             "AAA", "AAH", "AHH", "AAA", "AAH"),
    ("task", "create", "org",           "AAA", "AAH", "AFH", "FFF", "FFH"),
    ("task", "update", "org",           "AAA", "AAH", "AHH", "HHH", "HHH"),
    ("task", "delete", "org",           "AAA", "AAH", "AHH", "FFF", "FFH"),
    ("task", "send", "org",             "AAA", "AAH", "AHH", "HHH", "HHH"),
    ("task", "pause", "org",            "AAA", "AAH", "AHH", "FFF", "FFH"),
    ("task", "resume", "org",           "AAA", "AAH", "AHH", "FFF", "FFH"),
    ("task", "cancel", "org",           "AAA", "AAH", "AHH", "FFF", "FFH"),
    ("agent", "read", "org",            "AAA", "AAH", "AAH", "AAA", "AAH"),
    ("agent", "create", "org",          "AAA", "AAH", "AFH", "FFF", "FFH"),
    ("agent", "update", "org",          "AAA", "AAH", "AHH", "HHH", "HHH"),
    ("agent", "delete", "org",          "AAA", "AAH", "AHH", "HHH", "HHH"),
    ("agent_version", "read", "org",    "AAA", "AAH", "AAH", "AAA", "AAH"),
    ("agent_version", "create", "org",  "AAA", "AAH", "AHH", "HHH", "HHH"),
    ("session", "read", "org",          "AAA", "AAH", "AHH", "AAA", "AAH"),
    ("session", "create", "org",        "AAA", "AAH", "AHH", "HHH", "HHH"),
    ("session", "delete", "org",        "AAA", "AAH", "AHH", "HHH", "HHH"),
    ("session", "send", "org",          "AAA", "AAH", "AHH", "HHH", "HHH"),
    ("run", "read", "org",              "AAA", "AAH", "AHH", "AAA", "AAH"),
    ("run", "cancel", "org",            "AAA", "AAH", "AHH", "FFF", "FFH"),
    ("audit", "read_audit", "org",      "AAA", "AAF", "FFF", "AAA", "AAF"),
    ("audit", "read_audit", "site",     "AAA", "FFF", "FFF", "AAA", "FFF"),
    ("user", "read", "org",             "AAA", "AAH", "AAH", "AAA", "AAH"),
    ("user", "read", "site",            "AAA", "AHH", "AHH", "AAA", "AHH"),
    ("user", "update", "site",          "AAA", "AHH", "AHH", "AHH", "AHH"),
    ("user", "manage_users", "org",     "AAA", "AAH", "HHH", "HHH", "HHH"),
    ("user", "manage_users", "site",    "AAA", "HHH", "HHH", "HHH", "HHH"),
    ("token", "read", "site",           "AAA", "AHH", "AHH", "AAA", "AHH"),
    ("token", "manage_tokens", "site",  "AAA", "AHH", "AHH", "AHH", "AHH"),
    ("organization", "read", "org",     "AAA", "AAH", "AAH", "AAA", "AAH"),
    ("organization", "create", "site",  "AAA", "FFF", "FFF", "FFF", "FFF"),
    ("organization", "update", "org",   "AAA", "AAH", "HHH", "HHH", "HHH"),
    ("organization", "delete", "org",   "AAA", "HHH", "HHH", "HHH", "HHH"),
]

DECISIONS = {"A": Decision.ALLOWED, "H": Decision.HIDDEN, "F": Decision.FORBIDDEN}
RELATIONS = ("own", "peer", "stranger")


def resource(kind: ResourceKind, placement: str, relation: str) -> Resource:
    owner = {"own": ME, "peer": PEER, "stranger": STRANGER}[relation]
    org: UUID | None = None
    if placement == "org":
        org = ORG_B if relation == "stranger" else ORG_A
    if kind is ResourceKind.ORGANIZATION:
        return Resource(kind, org_id=org)
    return Resource(kind, org_id=org, owner_id=owner)


def cases() -> list[pytest.ParameterSet]:
    out = []
    for kind, action, placement, *cells in TABLE:
        for role, cell in zip(ROLES, cells, strict=True):
            for relation, letter in zip(RELATIONS, cell, strict=True):
                out.append(pytest.param(
                    role, ResourceKind(kind), Action(action), placement, relation, DECISIONS[letter],
                    id=f"{role}-{action}-{kind}-{placement}-{relation}",
                ))
    return out


@pytest.mark.parametrize(("role", "kind", "action", "placement", "relation", "expected"), cases())
def test_table(role: str, kind: ResourceKind, action: Action, placement: str, relation: str,
               expected: Decision) -> None:
    assert authorize(PRINCIPALS[role], action, resource(kind, placement, relation)) is expected


def test_table_covers_every_action_on_every_resource() -> None:
    listed = {(ResourceKind(kind), Action(action)) for kind, action, *_ in TABLE}
    valid = {(kind, action) for kind, actions in ACTIONS.items() for action in actions}
    assert listed == valid
    assert set(ResourceKind) == set(ACTIONS)
    assert {action for actions in ACTIONS.values() for action in actions} == set(Action)


def test_an_action_that_means_nothing_for_a_resource_is_a_bug() -> None:
    with pytest.raises(ValueError, match="'pause' is not an action on a agent"):
        authorize(PRINCIPALS["owner"], Action.PAUSE, Resource(ResourceKind.AGENT, ORG_A, ME))
    with pytest.raises(ValueError):
        list_scope(PRINCIPALS["owner"], Action.READ_AUDIT, ResourceKind.TASK)


# -- 404 masking, spelled out -----------------------------------------------------------------

ALICE, BOB, CAROL = uuid4(), uuid4(), uuid4()
alice = Principal(ALICE, org_roles={ORG_A: OrgRole.MEMBER})
bob = Principal(BOB, org_roles={ORG_A: OrgRole.MEMBER})
carol = Principal(CAROL, org_roles={ORG_B: OrgRole.MEMBER})
alices_task = Resource(ResourceKind.TASK, org_id=ORG_A, owner_id=ALICE)


@pytest.mark.parametrize("action", sorted(ACTIONS[ResourceKind.TASK] - {Action.CREATE}))
def test_a_member_cannot_tell_a_peers_task_from_a_missing_one(action: Action) -> None:
    assert authorize(alice, action, alices_task) is Decision.ALLOWED
    # Bob shares the organization, Carol does not: to both, Alice's task does not exist.
    for other in (bob, carol):
        assert authorize(other, action, alices_task) is Decision.HIDDEN
        with pytest.raises(errors.NotFound) as caught:
            require(other, action, alices_task)
        assert caught.value.status_code == 404
        assert caught.value.message == errors.NOT_FOUND_MESSAGE


def test_an_org_admin_sees_nothing_of_another_org() -> None:
    admin_b = Principal(uuid4(), org_roles={ORG_B: OrgRole.ADMIN})
    for action in ACTIONS[ResourceKind.TASK] - {Action.CREATE}:
        assert authorize(admin_b, action, alices_task) is Decision.HIDDEN
    assert authorize(admin_b, Action.READ, Resource(ResourceKind.AGENT, ORG_A, ALICE)) is Decision.HIDDEN


def test_agents_are_shared_within_the_org_but_only_their_owner_edits() -> None:
    agent = Resource(ResourceKind.AGENT, org_id=ORG_A, owner_id=ALICE)
    assert authorize(bob, Action.READ, agent) is Decision.ALLOWED
    assert authorize(bob, Action.UPDATE, agent) is Decision.HIDDEN
    assert authorize(carol, Action.READ, agent) is Decision.HIDDEN
    assert authorize(alice, Action.DELETE, agent) is Decision.ALLOWED


def test_creating_for_someone_else_is_403_in_ones_org_and_404_elsewhere() -> None:
    assert authorize(bob, Action.CREATE, Resource(ResourceKind.TASK, ORG_A, ALICE)) is Decision.FORBIDDEN
    assert authorize(bob, Action.CREATE, Resource(ResourceKind.TASK, ORG_B, BOB)) is Decision.HIDDEN
    with pytest.raises(errors.Forbidden) as caught:
        require(bob, Action.CREATE, Resource(ResourceKind.TASK, ORG_A, ALICE))
    assert caught.value.status_code == 403


def test_the_auditor_reads_everything_and_changes_nothing() -> None:
    auditor = PRINCIPALS["auditor"]
    for kind, actions in ACTIONS.items():
        for action in actions:
            for placement, relation in itertools.product(("org", "site"), ("peer", "stranger")):
                decision = authorize(auditor, action, resource(kind, placement, relation))
                assert decision.allowed is (action in {Action.READ, Action.READ_AUDIT}), (kind, action)


def test_roles_add_up() -> None:
    # A site auditor who is also a member of A may run their own tasks there, and read all.
    both = Principal(ME, site_role=SiteRole.AUDITOR, org_roles={ORG_A: OrgRole.MEMBER})
    assert authorize(both, Action.DELETE, Resource(ResourceKind.TASK, ORG_A, ME)).allowed
    assert authorize(both, Action.DELETE, Resource(ResourceKind.TASK, ORG_A, PEER)) is Decision.FORBIDDEN
    assert authorize(both, Action.READ, Resource(ResourceKind.TASK, ORG_B, STRANGER)).allowed


def test_a_member_removed_from_an_org_loses_their_tasks_there() -> None:
    assert authorize(alice, Action.READ, Resource(ResourceKind.TASK, ORG_B, ALICE)) is Decision.HIDDEN


def test_everyone_has_their_own_tokens_and_profile_without_any_role() -> None:
    nobody = Principal(uuid4())
    assert authorize(nobody, Action.MANAGE_TOKENS, Resource(ResourceKind.TOKEN, owner_id=nobody.user_id)).allowed
    assert authorize(nobody, Action.UPDATE, Resource(ResourceKind.USER, owner_id=nobody.user_id)).allowed
    assert authorize(nobody, Action.READ, alices_task) is Decision.HIDDEN


def test_rules_are_data_keyed_by_role() -> None:
    assert set(RULES) == {*Role, "everyone"}


def test_require_passes_silently_when_allowed() -> None:
    require(alice, Action.SEND, alices_task)


# -- list filters agree with the decision function --------------------------------------------

SAMPLE_RESOURCES = [
    Resource(kind, org_id=org, owner_id=owner)
    for kind in ResourceKind
    for org in (ORG_A, ORG_B, None)
    for owner in (ME, PEER, None)
]


@pytest.mark.parametrize("role", [*ROLES, "auditor_and_member"])
def test_list_scope_matches_exactly_what_authorize_allows(role: str) -> None:
    principal = PRINCIPALS.get(role) or Principal(
        ME, site_role=SiteRole.AUDITOR, org_roles={ORG_A: OrgRole.MEMBER, ORG_B: OrgRole.ADMIN})
    for kind, actions in ACTIONS.items():
        for action in actions:
            scope = list_scope(principal, action, kind)
            for res in (r for r in SAMPLE_RESOURCES if r.kind is kind):
                assert scope.matches(res) == authorize(principal, action, res).allowed, (kind, action, res)


def test_list_scope_of_a_member() -> None:
    scope = list_scope(PRINCIPALS["member"], Action.READ, ResourceKind.TASK)
    assert (scope.everything, scope.org_ids, scope.own_org_ids, scope.own_anywhere) == (
        False, frozenset(), frozenset({ORG_A}), False)
    agents = list_scope(PRINCIPALS["member"], Action.READ, ResourceKind.AGENT)
    assert agents.org_ids == frozenset({ORG_A})
    assert list_scope(PRINCIPALS["member"], Action.READ_AUDIT, ResourceKind.AUDIT).empty
