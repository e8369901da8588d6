"""tutor_render.py: load the Tutor plugin (contrib/tutor/programs_cached.py)
without Tutor, and render what Tutor would render from it.

Tutor cannot be installed here, so this module stands in for the part of
it the plugin touches: ``tutor.hooks`` (the filters the plugin adds items
and callbacks to, with Tutor's names; any other name is an AttributeError,
so a misspelt filter fails), the configuration (Tutor's documented
defaults below, then the plugin's CONFIG_DEFAULTS and CONFIG_UNIQUE, then
the caller's overrides, with every string rendered as Tutor renders
config values), and the Jinja2 rendering of patches and of the plugin's
template folder (StrictUndefined, as Tutor's own environment).

    t = TutorRender(overrides={"REDIS_PORT": 6380})
    t.patch("local-docker-compose-services")   # rendered text
    t.compose()          # a docker-compose document with Tutor's services
    t.render_env(dir)    # env/plugins/programs-cached/apps/... under dir
    t.init_task("lms")   # the rendered init script
"""

import importlib.util
import os
import random
import string
import sys
import types
from pathlib import Path

import jinja2
import yaml

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "contrib" / "tutor" / "programs_cached.py"

# Tutor's defaults for the settings the plugin reads (tutor/templates/
# config/defaults.yml and base.yml), with a Tutor 16 version.
TUTOR_DEFAULTS = {
    "TUTOR_VERSION": "16.0.0",
    "TUTOR_APP": "tutor",
    "PLUGINS": [],
    "LMS_HOST": "www.myopenedx.com",
    "CMS_HOST": "studio.{{ LMS_HOST }}",
    "ENABLE_HTTPS": False,
    "DOCKER_REGISTRY": "docker.io/",
    "DOCKER_IMAGE_OPENEDX": "{{ DOCKER_REGISTRY }}overhangio/openedx:{{ TUTOR_VERSION }}",
    "DOCKER_IMAGE_PERMISSIONS":
        "{{ DOCKER_REGISTRY }}overhangio/openedx-permissions:{{ TUTOR_VERSION }}",
    "DOCKER_IMAGE_REDIS": "docker.io/redis:7.0.11",
    "K8S_NAMESPACE": "openedx",
    "OPENEDX_CACHE_REDIS_DB": 1,
    "REDIS_HOST": "redis",
    "REDIS_PORT": 6379,
    "REDIS_USERNAME": "",
    "REDIS_PASSWORD": "",
    "RUN_LMS": True,
    "RUN_CMS": True,
    "RUN_REDIS": True,
    "RUN_MYSQL": True,
}

# The filters of tutor.hooks.Filters the plugin may use.
FILTER_NAMES = (
    "CONFIG_DEFAULTS", "CONFIG_UNIQUE", "CONFIG_OVERRIDES", "ENV_PATCHES",
    "ENV_TEMPLATE_ROOTS", "ENV_TEMPLATE_TARGETS", "ENV_TEMPLATE_VARIABLES",
    "IMAGES_BUILD", "IMAGES_PULL", "IMAGES_PUSH", "CLI_DO_INIT_TASKS",
    "COMPOSE_MOUNTS", "IMAGES_BUILD_MOUNTS",
)


class _Filter:
    """A Tutor filter: items and callbacks, applied by priority."""

    def __init__(self, name):
        self.name = name
        self._callbacks = []   # (priority, order, fn)

    def add(self, priority=None):
        def decorator(fn):
            self._callbacks.append((10 if priority is None else priority,
                                    len(self._callbacks), fn))
            return fn
        return decorator

    def add_items(self, items, priority=None):
        items = list(items)

        def callback(values, *args):
            return values + items
        self.add(priority)(callback)

    def add_item(self, item, priority=None):
        self.add_items([item], priority)

    def iterate(self, *args):
        values = []
        for _, _, fn in sorted(self._callbacks, key=lambda c: c[:2]):
            values = fn(values, *args)
        return values


class _Filters:
    def __init__(self):
        for name in FILTER_NAMES:
            setattr(self, name, _Filter(name))


def load_plugin():
    """Import the plugin against a fresh stub of tutor.hooks; the stub's
    Filters, with what the plugin put there."""
    hooks = types.ModuleType("tutor.hooks")
    hooks.Filters = _Filters()
    hooks.priorities = types.SimpleNamespace(HIGH=5, DEFAULT=10, LOW=50)
    tutor = types.ModuleType("tutor")
    tutor.hooks = hooks
    saved = {k: sys.modules.get(k) for k in ("tutor", "tutor.hooks")}
    sys.modules["tutor"], sys.modules["tutor.hooks"] = tutor, hooks
    try:
        spec = importlib.util.spec_from_file_location("programs_cached", PLUGIN)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return hooks.Filters, module


def random_string(length):
    return "".join(random.choice(string.ascii_letters + string.digits)
                   for _ in range(length))


class TutorRender:
    """The plugin loaded and its configuration resolved (see the module
    docstring).  overrides: what `tutor config save --set K=V` would set
    (applied last, so they also replace unique values)."""

    def __init__(self, overrides=None):
        self.filters, self.module = load_plugin()
        self.jinja = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.filters.ENV_TEMPLATE_ROOTS.iterate()),
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        self.jinja.filters["random_string"] = random_string
        self.jinja.globals["patch"] = self.patch
        config = dict(TUTOR_DEFAULTS)
        config.update(dict(self.filters.CONFIG_DEFAULTS.iterate()))
        config.update(dict(self.filters.CONFIG_UNIQUE.iterate()))
        config.update(dict(self.filters.CONFIG_OVERRIDES.iterate()))
        config.update(overrides or {})
        self.config = self._resolve(config)

    def _resolve(self, config):
        """Render string values until none changes (values refer to others)."""
        for _ in range(10):
            changed = False
            for k, v in config.items():
                if isinstance(v, str) and "{" in v:
                    new = self.jinja.from_string(v).render(**config)
                    if new != v:
                        config[k], changed = new, True
            if not changed:
                return config
        raise AssertionError("config values do not settle: %r" % config)

    def render_str(self, text):
        return self.jinja.from_string(text).render(**self.config)

    def patch(self, name, separator="\n", suffix=""):
        """What {{ patch(name) }} inserts: every item of that name, rendered."""
        parts = [self.render_str(content)
                 for pname, content in self.filters.ENV_PATCHES.iterate()
                 if pname == name]
        return separator.join(parts) + (suffix if parts else "")

    def patch_names(self):
        return sorted({name for name, _ in self.filters.ENV_PATCHES.iterate()})

    def init_task(self, service):
        """The rendered init scripts for service, joined."""
        return "\n".join(self.render_str(script) for svc, script in
                         self.filters.CLI_DO_INIT_TASKS.iterate() if svc == service)

    def images_build(self):
        """IMAGES_BUILD as tutor images build sees it: (name, path, tag, args),
        the tag rendered."""
        return [(name, path, self.render_str(tag), tuple(self.render_str(a) for a in args))
                for name, path, tag, args in self.filters.IMAGES_BUILD.iterate(self.config)]

    def render_env(self, root):
        """Render each ENV_TEMPLATE_TARGETS folder as Tutor does: template
        "src/x/y" of target (src, dst) to root/env/dst/src/x/y.  Returns
        {relative path: text}."""
        out = {}
        roots = self.filters.ENV_TEMPLATE_ROOTS.iterate()
        for src, dst in self.filters.ENV_TEMPLATE_TARGETS.iterate():
            for base in roots:
                top = Path(base) / src
                for path in sorted(p for p in top.rglob("*") if p.is_file()):
                    rel = path.relative_to(base).as_posix()
                    text = self.jinja.get_template(rel).render(**self.config)
                    target = Path(root) / "env" / dst / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text, encoding="utf-8")
                    out[(Path(dst) / rel).as_posix()] = text
        return out

    # -- the files Tutor's own templates make of the patches ------------------

    def compose(self):
        """env/local/docker-compose.yml, reduced to the services the plugin
        may name (Tutor's redis, lms, permissions and, with tutor-discovery
        enabled, discovery), with the plugin's services patched in as
        Tutor's template does (indented by two)."""
        text = (
            'version: "3.7"\n'
            "services:\n"
            "  permissions:\n"
            "    image: {{ DOCKER_IMAGE_PERMISSIONS }}\n"
            "    restart: on-failure\n"
            "    volumes:\n"
            "      - ../../data/lms:/mounts/lms\n"
            '      {{ patch("local-docker-compose-permissions-volumes")|indent(6) }}\n'
            "{% if RUN_REDIS %}"
            "  redis:\n"
            "    image: {{ DOCKER_IMAGE_REDIS }}\n"
            "    depends_on: [permissions]\n"
            "{% endif %}"
            "{% if RUN_LMS %}"
            "  lms:\n"
            "    image: {{ DOCKER_IMAGE_OPENEDX }}\n"
            "    depends_on: [permissions]\n"
            "{% endif %}"
            '{% if "discovery" in PLUGINS %}'
            "  discovery:\n"
            "    image: discovery\n"
            "{% endif %}"
            '  {{ patch("local-docker-compose-services")|indent(2) }}\n')
        return yaml.safe_load(self.render_str(text))

    def permissions_script(self):
        """apps/permissions/setowners.sh's plugin part."""
        return self.patch("local-docker-compose-permissions-command")

    def k8s(self):
        """The documents of k8s/deployments.yml and k8s/volumes.yml that
        the plugin adds, and the kustomization's configMapGenerator
        entries: (deployments, volumes, configmaps) as lists of dicts."""
        deployments = [d for d in yaml.safe_load_all(self.patch("k8s-deployments")) if d]
        volumes = [d for d in yaml.safe_load_all(self.patch("k8s-volumes")) if d]
        kustomization = yaml.safe_load(
            "configMapGenerator:\n- name: openedx-config\n  files: []\n"
            + self.patch("kustomization-configmapgenerator") + "\n")
        return deployments, volumes, kustomization["configMapGenerator"]


def resolve_compose_path(env_root, host_path):
    """A compose volume's host side, relative to env/local as docker compose
    reads env/local/docker-compose.yml."""
    return os.path.normpath(os.path.join(env_root, "env", "local", host_path))
