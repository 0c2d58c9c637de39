"""Every environment variable of every settings class, for `journeys env` and docs/configuration.md."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import typing
from collections.abc import Mapping

from pydantic import AliasChoices, SecretStr

import services
from services.common.redis_conn import redact
from services.common.settings import CommonSettings, env_table

# A variable whose name says it holds a secret is never printed, whatever its type.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|API_KEY", re.IGNORECASE)
MASK = "********"


def settings_classes() -> list[type[CommonSettings]]:
    """CommonSettings and its subclasses found in ``services.*.settings`` modules."""
    for mod in pkgutil.walk_packages(services.__path__, prefix="services."):
        if mod.name.endswith(".settings") or mod.name.endswith("_settings"):
            importlib.import_module(mod.name)
    found: list[type[CommonSettings]] = []
    todo: list[type[CommonSettings]] = [CommonSettings]
    while todo:
        cls = todo.pop(0)
        if cls not in found:
            found.append(cls)
            todo.extend(cls.__subclasses__())
    # A stable order whatever was imported first: common, then each service, the stack (which repeats the
    # services' port variables to probe them) last, so a variable is credited to the service that owns it.
    return [CommonSettings, *sorted(found[1:], key=_order)]


def _order(cls: type[CommonSettings]) -> tuple[bool, str, str]:
    return (cls.__module__.startswith("services.stack"), cls.__module__, cls.__qualname__)


def rows() -> list[tuple[str, str, str, str]]:
    """(variable, default, description, declaring class): each variable once, CommonSettings first."""
    seen: dict[str, tuple[str, str, str, str]] = {}
    for cls in settings_classes():
        for name, default, desc in env_table(cls):
            seen.setdefault(name, (name, default, desc, f"{cls.__module__}.{cls.__qualname__}"))
    return list(seen.values())


def markdown() -> str:
    lines = ["| variable | default | declared in | meaning |", "|---|---|---|---|"]
    for name, default, desc, where in rows():
        shown = f"`{default}`" if default else "_(unset)_"
        area = where.split(".")[1]
        meaning = desc.replace("|", "\\|")
        lines.append(f"| `{name}` | {shown} | {area} | {meaning} |")
    return "\n".join(lines)


def secret_names() -> set[str]:
    """Variables of SecretStr fields (JOURNEYS_HMAC_SECRET, JOURNEYS_API_TOKEN, ...)."""
    names = set()
    for cls in settings_classes():
        for field in cls.model_fields.values():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices) and SecretStr in _types(field.annotation):
                names.add(str(alias.choices[0]))
    return names


def _types(annotation: object) -> set[object]:
    return {annotation, *typing.get_args(annotation)}


def shown(name: str, value: str, secrets: set[str]) -> str:
    """``value`` as `journeys env` may print it: secrets masked, a URL's password masked."""
    if not value:
        return value
    if name in secrets or SECRET_NAME.search(name):
        return MASK
    if "://" in value:  # a URL's password (redact also reads a cluster's host:port,host:port list)
        return redact(value, MASK)
    return value


def in_effect(environ: Mapping[str, str] | None = None) -> list[tuple[str, str, bool, str]]:
    """(variable, value shown, set in the environment?, description) for every variable."""
    environ = os.environ if environ is None else environ
    secrets = secret_names()
    out = []
    for name, default, desc, _ in rows():
        given = name in environ
        out.append((name, shown(name, environ[name] if given else default, secrets), given, desc))
    return out


def plain(environ: Mapping[str, str] | None = None) -> str:
    """The values in effect: ``set`` when the environment gives the variable, else ``default``."""
    found = in_effect(environ)
    given = sum(1 for _, _, is_set, _ in found if is_set)
    lines = [f"# {given} of {len(found)} variables set in the environment; the others have their default"]
    lines += [f"{n}={v}  # {'set' if is_set else 'default'}: {desc}" for n, v, is_set, desc in found]
    return "\n".join(lines)
