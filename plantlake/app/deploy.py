"""`plantlake deploy users`: the web UI's and REST API's users for Airflow's FAB auth manager,
from the environment (.env), each checked against the password policy before anything is
written. The compose init job runs it after `airflow db migrate` (which creates FAB's tables).

- AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD: the admin (role Admin).
- AIRFLOW_USERS: more users as `name:Role` pairs, comma-separated (roles: FAB's Admin, Op,
  User, Viewer; Viewer when omitted); each user's password in AIRFLOW_PASSWORD_<NAME>, the name
  upper-cased with every other character than A-Z and 0-9 as `_`.

A user that exists gets the password and the role from the environment again, so rotating a
password in .env and re-running the init job takes effect. Passwords are never printed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from plantlake.core.config import ConfigError

ROLES = ("Admin", "Op", "User", "Viewer")
WEAK = {"admin", "airflow", "password", "changeme", "plantlake", "123456", "12345678"}
MIN_PASSWORD = 12


@dataclass(frozen=True)
class UiUser:
    name: str
    role: str
    password: str
    setting: str  # where it came from, for messages

    def __repr__(self) -> str:  # never the password
        return f"UiUser({self.name!r}, {self.role!r})"


def password_problem(user: str, password: str) -> str | None:
    """Why a UI user or password is not good enough for a deployment (None when it is)."""
    if not user.strip() or any(ch.isspace() or ord(ch) < 32 for ch in user):
        return "the user name is empty or holds spaces or control characters"
    if len(password) < MIN_PASSWORD:
        return f"the password must be at least {MIN_PASSWORD} characters"
    if password.lower() in WEAK or password.lower() == user.lower():
        return "the password is a default or the user name"
    return None


def password_variable(name: str) -> str:
    return "AIRFLOW_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def ui_users(env: Mapping[str, str]) -> list[UiUser]:
    """Every UI user the environment declares; ConfigError naming each setting that is wrong."""
    users = [UiUser(env.get("AIRFLOW_ADMIN_USER", "admin"), "Admin", env.get("AIRFLOW_ADMIN_PASSWORD", ""),
                    "AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD")]
    problems = []
    for item in filter(None, (part.strip() for part in env.get("AIRFLOW_USERS", "").split(","))):
        name, _, role = (s.strip() for s in item.partition(":"))
        role = role or "Viewer"
        if role not in ROLES:
            problems.append(f"AIRFLOW_USERS: the role {role!r} of user {name!r} is not one of {', '.join(ROLES)}")
            continue
        var = password_variable(name)
        users.append(UiUser(name, role, env.get(var, ""), f"AIRFLOW_USERS / {var}"))
    seen: set[str] = set()
    for user in users:
        problem = password_problem(user.name, user.password)
        if problem:
            problems.append(f"{user.setting}: {problem}")
        elif user.name.lower() in seen:
            problems.append(f"{user.setting}: user {user.name!r} is declared twice")
        seen.add(user.name.lower())
    if problems:
        raise ConfigError("UI users in .env: " + "; ".join(problems))
    return users


def write_users(users: list[UiUser]) -> list[str]:
    """Create or update each user in FAB's tables of the Airflow metadata database; one line per
    user of what was done."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    done = []
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        for user in users:
            role = sm.find_role(user.role)
            if role is None:
                raise ConfigError(f"{user.setting}: FAB has no role {user.role!r}; did `airflow db migrate` run "
                                  "with AIRFLOW__CORE__AUTH_MANAGER set to the FAB auth manager?")
            existing = sm.find_user(username=user.name)
            if existing is None:
                if not sm.add_user(user.name, user.name, "plantlake", f"{user.name}@plantlake.invalid", role,
                                   user.password):
                    raise ConfigError(f"{user.setting}: FAB could not create user {user.name!r}")
                done.append(f"created UI user {user.name!r} ({user.role})")
            else:
                existing.roles = [role]
                sm.update_user(existing)
                sm.reset_password(existing.id, user.password)
                done.append(f"updated UI user {user.name!r} ({user.role}, password from {user.setting})")
    return done
