"""Every environment variable of every settings class, for `journeys env` and docs/configuration.md."""

from __future__ import annotations

import importlib
import pkgutil

import services
from services.common.settings import CommonSettings, env_table


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


def plain() -> str:
    return "\n".join(f"{n}={d}  # {desc}" for n, d, desc, _ in rows())
