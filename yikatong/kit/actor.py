"""Who is acting: the one object every service receives to decide and to audit.

An :class:`Actor` is built at the edge (from a staff session, later from a resident session or a
gateway application) and passed to services, which check permissions and region scope on it —
never in routes. Region scope is a GB/T 2260 code: a city-level actor (441600) covers every
county of the city, a county-level actor (441625) only that county.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Permission(enum.StrEnum):
    RESIDENTS_READ = "residents:read"
    RESIDENTS_READ_SENSITIVE = "residents:read_sensitive"
    RESIDENTS_WRITE = "residents:write"
    STAFF_READ = "staff:read"
    STAFF_MANAGE = "staff:manage"
    AUDIT_READ = "audit:read"
    AUDIT_VERIFY = "audit:verify"
    KEYS_MANAGE = "keys:manage"
    DASHBOARD_READ = "dashboard:read"
    CARDS_READ = "cards:read"
    CARDS_OPERATE = "cards:operate"
    CARDS_PRODUCTION = "cards:production"


class Role(enum.StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    COUNTER_CLERK = "counter_clerk"
    DEPARTMENT_ADMIN = "department_admin"
    AUDITOR = "auditor"
    LEADERSHIP = "leadership"


# The one table of what each role may do. Region scope narrows every row-level permission.
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PLATFORM_ADMIN: frozenset(
        {
            Permission.RESIDENTS_READ,
            Permission.STAFF_READ,
            Permission.STAFF_MANAGE,
            Permission.KEYS_MANAGE,
            Permission.DASHBOARD_READ,
            Permission.CARDS_READ,
            Permission.CARDS_PRODUCTION,
        }
    ),
    Role.COUNTER_CLERK: frozenset(
        {
            Permission.RESIDENTS_READ,
            Permission.RESIDENTS_READ_SENSITIVE,
            Permission.RESIDENTS_WRITE,
            Permission.CARDS_READ,
            Permission.CARDS_OPERATE,
        }
    ),
    Role.DEPARTMENT_ADMIN: frozenset(
        {Permission.RESIDENTS_READ, Permission.DASHBOARD_READ, Permission.CARDS_READ}
    ),
    Role.AUDITOR: frozenset(
        {Permission.AUDIT_READ, Permission.AUDIT_VERIFY, Permission.STAFF_READ}
    ),
    Role.LEADERSHIP: frozenset({Permission.DASHBOARD_READ}),
}


def scope_prefix(region_code: str) -> str:
    """The code prefix matching every region inside ``region_code`` (441600 -> 4416)."""
    code = region_code
    if len(code) == 6:
        if code.endswith("0000"):
            return code[:2]
        if code.endswith("00"):
            return code[:4]
    return code


class ActorKind(enum.StrEnum):
    STAFF = "staff"
    RESIDENT = "resident"  # a card holder acting for themselves in the portal
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str
    name: str
    role: str | None
    region_code: str
    permissions: frozenset[Permission] = field(default_factory=frozenset)
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    session_id: int | None = None

    @classmethod
    def system(cls, name: str, region_code: str = "000000") -> Actor:
        """A job or CLI command acting for the operators (country-wide scope, all permissions)."""
        return cls(
            ActorKind.SYSTEM,
            id=name,
            name=name,
            role="system",
            region_code=region_code,
            permissions=frozenset(Permission),
        )

    @classmethod
    def resident(
        cls,
        resident_id: int,
        name: str,
        region_code: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        request_id: str | None = None,
        session_id: int | None = None,
    ) -> Actor:
        """A resident acting on their own records only (no staff permission, no region)."""
        return cls(
            ActorKind.RESIDENT,
            id=str(resident_id),
            name=name,
            role="resident",
            region_code=region_code,
            ip=ip,
            user_agent=user_agent,
            request_id=request_id,
            session_id=session_id,
        )

    @classmethod
    def anonymous(
        cls, ip: str | None = None, user_agent: str | None = None, request_id: str | None = None
    ) -> Actor:
        return cls(
            ActorKind.ANONYMOUS,
            id="-",
            name="anonymous",
            role=None,
            region_code="-",
            ip=ip,
            user_agent=user_agent,
            request_id=request_id,
        )

    def can(self, permission: Permission | str) -> bool:
        return Permission(permission) in self.permissions

    @property
    def scope(self) -> str:
        """Prefix of the region codes this actor may see; empty for country-wide."""
        if self.kind is ActorKind.SYSTEM and self.region_code == "000000":
            return ""
        return scope_prefix(self.region_code)

    def covers(self, region_code: str | None) -> bool:
        """Whether a record registered in ``region_code`` is inside this actor's scope.
        Residents have no region scope: services check they act on their own records."""
        if self.kind is ActorKind.RESIDENT:
            return False
        if region_code is None:
            return self.scope == ""
        return region_code.startswith(self.scope)
