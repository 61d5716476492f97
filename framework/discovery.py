"""Discovery of installed plugin packages through the `tsal.plugins` entry points.

A plugin package declares itself in its `pyproject.toml`:

    [project.entry-points."tsal.plugins"]
    my_plugins = "my_plugins"

The value names an importable package. Next to its `__init__.py` it contains a
`conf/` folder laid out like ours (`conf/classifier/<name>.yaml`,
`conf/query/<name>.yaml`, ...). After `pip install`, Hydra's search path
includes that folder after ours (`PluginPackagesSearchPath`, registered when
`framework` is imported), so its choices show in `python -m framework --help`
and work as `classifier=<name>`. A file that a built-in one of the same name
hides is reported.

A package that fails to import, or has no `conf/` folder, is reported by
name with the reason and left out; the other packages still load.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tsal.plugins"


def builtin_conf_dir() -> Path:
    """Our config folder: inside the installed package, or the checkout's conf/.

    A wheel carries the top-level `conf/` as `framework/conf`; an editable
    install or a checkout reads `conf/` directly.
    """
    installed = Path(__file__).resolve().parent / "conf"
    if (installed / "config.yaml").is_file():
        return installed
    return Path(__file__).resolve().parents[1] / "conf"


@dataclass(frozen=True)
class PluginPackage:
    """An installed plugin package: its entry-point name and config folder."""

    name: str
    module: str
    conf_dir: Path


@lru_cache(maxsize=1)
def plugin_packages() -> tuple[PluginPackage, ...]:
    """Import every `tsal.plugins` entry point once; return those that load.

    Failures are logged as warnings that name the entry point and the error,
    once per process.
    """
    found: dict[str, PluginPackage] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        # An editable install next to a regular one lists a package twice.
        if point.name in found:
            continue
        try:
            module = point.load()
        except Exception as error:  # any import error, reported below
            log.warning(
                "plugin package %r (entry point %s = %s) failed to import and is "
                "left out: %s: %s",
                point.name,
                ENTRY_POINT_GROUP,
                point.value,
                type(error).__name__,
                error,
            )
            continue
        locations = list(getattr(module, "__path__", []))
        if not locations and getattr(module, "__file__", None):
            locations = [str(Path(module.__file__).parent)]
        conf_dirs = [Path(p) / "conf" for p in locations if (Path(p) / "conf").is_dir()]
        if not conf_dirs:
            log.warning(
                "plugin package %r (entry point %s = %s) has no conf/ folder next "
                "to its __init__.py and is left out; put its YAML files in "
                "conf/<group>/<name>.yaml inside the package",
                point.name,
                ENTRY_POINT_GROUP,
                point.value,
            )
            continue
        found[point.name] = PluginPackage(point.name, point.value, conf_dirs[0])
    return tuple(found.values())


def shadowed_configs(packages: tuple[PluginPackage, ...], builtin: Path) -> list[str]:
    """Describe each plugin config that an earlier folder of the same name hides.

    Hydra takes the first `<group>/<name>.yaml` on its search path, so a
    plugin cannot replace a built-in choice or one of an earlier package.
    """
    owners = {
        path.relative_to(builtin).as_posix(): "the built-in configs"
        for path in builtin.rglob("*.yaml")
    }
    messages = []
    for package in packages:
        for path in sorted(package.conf_dir.rglob("*.yaml")):
            relative = path.relative_to(package.conf_dir).as_posix()
            if relative in owners:
                messages.append(
                    f"plugin package {package.name!r}: conf/{relative} is hidden by "
                    f"{owners[relative]}; give it another file name"
                )
            else:
                owners[relative] = f"plugin package {package.name!r}"
    return messages


class PluginPackagesSearchPath(SearchPathPlugin):
    """Append the conf/ folder of every plugin package to our app's search path.

    Hydra consults every registered search-path plugin for every app; this
    one acts only when the search path contains our own conf/ folder.
    """

    _reported: set[str] = set()

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        builtin = builtin_conf_dir().resolve()
        if not any(
            _is_dir(element.path, builtin) for element in search_path.get_path()
        ):
            return
        packages = plugin_packages()
        for package in packages:
            search_path.append(
                provider=f"tsal-plugin-{package.name}",
                path=f"file://{package.conf_dir}",
            )
        for message in shadowed_configs(packages, builtin):
            if message not in self._reported:
                self._reported.add(message)
                log.warning(message)


def register_search_path() -> None:
    """Make Hydra consult `PluginPackagesSearchPath`; safe to call repeatedly."""
    Plugins.instance().register(PluginPackagesSearchPath)


def _is_dir(path: str | None, directory: Path) -> bool:
    if not path or path.startswith("pkg://"):
        return False
    try:
        return Path(path.removeprefix("file://")).resolve() == directory
    except OSError:
        return False
