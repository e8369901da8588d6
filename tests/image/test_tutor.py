"""The Tutor plugin (contrib/tutor/programs_cached.py), without Tutor.

The plugin is imported against tutor_render's stand-in for tutor.hooks and
its patches and templates rendered with Jinja2 against Tutor's documented
defaults (tutor_render.TUTOR_DEFAULTS), as `tutor config save` would; then:

- the compose service and the k8s objects are parsed as YAML and checked
  field by field (image, command, volumes, environment, the dependencies
  on redis, lms and discovery as Tutor names them, probes, mounts that
  name objects that exist);
- the rendered configuration passes programs-cached --check-config;
- the LMS init task is run by sh against a stand-in manage.py whose
  `shell -c` is real Django (its sites and auth apps on SQLite) and whose
  other commands are recorded;
- the compose service is run for real by podman (with its volumes,
  environment and command as rendered) beside a redis-server and the fake
  Discovery, and fills Redis as Tutor's LMS reads it.

What is not tested here: Tutor itself (its CLI, how it merges patches into
its own files beyond the indentation modelled in tutor_render), docker
compose, Kubernetes, and the LMS's manage_user and create_dot_application.
"""

import configparser
import os
import subprocess
import textwrap
import unittest
from pathlib import Path

from tests.image import tutor_render
from tests.image.container import Container, ImageTestCase
from tests.support import catalog, reference
from tests.support.harness import REPO, PcdTestCase, daemon_binary, free_port
from tests.support.rediscache import RedisReader, RedisServer

WITH_DISCOVERY = {"PLUGINS": ["discovery", "programs_cached"]}
CONF_IN_ENV = "plugins/programs-cached/apps/programs-cached.conf"


def makefile_version():
    for line in (REPO / "Makefile").read_text().splitlines():
        if line.startswith("VERSION"):
            return line.split("=", 1)[1].strip()
    raise AssertionError("no VERSION in the Makefile")


def read_conf(text):
    p = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"))
    p.read_string(text)
    return p


class Plugin(unittest.TestCase):
    """What the plugin registers with Tutor."""

    def test_version_is_the_daemons(self):
        t = tutor_render.TutorRender()
        self.assertEqual(t.module.VERSION, makefile_version())
        self.assertEqual(t.config["PROGRAMS_CACHED_DOCKER_IMAGE"],
                         "localhost/programs-cached:%s" % makefile_version())

    def test_images_build_the_containerfile_of_this_tree(self):
        t = tutor_render.TutorRender()
        [(name, path, tag, args)] = t.images_build()
        self.assertEqual(name, "programs-cached")
        self.assertEqual(path, (str(REPO),))
        # Tutor joins the path to its env directory; an absolute one stays.
        self.assertEqual(os.path.join("/root/.local/share/tutor/env", *path), str(REPO))
        self.assertEqual(tag, "localhost/programs-cached:" + makefile_version())
        files = [a.split("=", 1)[1] for a in args if a.startswith("--file=")]
        self.assertEqual(files, [str(REPO / "contrib" / "container" / "Containerfile")])
        self.assertTrue(Path(files[0]).is_file())
        self.assertIn("--build-arg=VERSION=" + makefile_version(), args)
        self.assertIn("--build-arg=APP_USER_ID=1000", args)

    def test_no_source_tree_no_build(self):
        t = tutor_render.TutorRender({"PROGRAMS_CACHED_SOURCE_DIR": ""})
        self.assertEqual(t.images_build(), [])

    def test_pull_and_push_only_from_a_registry(self):
        t = tutor_render.TutorRender()
        self.assertEqual(t.filters.IMAGES_PULL.iterate(t.config), [])
        self.assertEqual(t.filters.IMAGES_PUSH.iterate(t.config), [])
        t = tutor_render.TutorRender({"PROGRAMS_CACHED_DOCKER_IMAGE": "registry.example/pcd:1"})
        for f in (t.filters.IMAGES_PULL, t.filters.IMAGES_PUSH):
            [(name, tag)] = f.iterate(t.config)
            self.assertEqual((name, t.render_str(tag)), ("programs-cached", "registry.example/pcd:1"))

    def test_defaults_are_tutors_internal_names(self):
        c = tutor_render.TutorRender().config
        self.assertEqual(c["PROGRAMS_CACHED_DISCOVERY_URL"], "http://discovery:8000/api/v1")
        self.assertEqual(c["PROGRAMS_CACHED_OAUTH_URL"], "http://lms:8000")
        self.assertEqual(c["PROGRAMS_CACHED_REDIS_URL"], "redis://redis:6379/1")
        self.assertEqual(c["PROGRAMS_CACHED_CHANGE_KEY"], "discovery:1:api_timestamp")
        # The secret is unique: generated once, kept in Tutor's config.
        self.assertRegex(c["PROGRAMS_CACHED_OAUTH2_SECRET"], r"^[A-Za-z0-9]{32}$")
        self.assertNotEqual(c["PROGRAMS_CACHED_OAUTH2_SECRET"],
                            tutor_render.TutorRender().config["PROGRAMS_CACHED_OAUTH2_SECRET"])

    def test_redis_from_tutors_settings(self):
        c = tutor_render.TutorRender({"REDIS_HOST": "cache.internal", "REDIS_PORT": 6380,
                                      "OPENEDX_CACHE_REDIS_DB": 4,
                                      "REDIS_USERNAME": "lms"}).config
        self.assertEqual(c["PROGRAMS_CACHED_REDIS_URL"], "redis://lms@cache.internal:6380/4")


class Compose(PcdTestCase):
    """local-docker-compose-services, as env/local/docker-compose.yml."""

    def render(self, **overrides):
        t = tutor_render.TutorRender(dict(WITH_DISCOVERY, **overrides))
        files = t.render_env(self.tmpdir)
        doc = t.compose()
        return t, files, doc, doc["services"]["programs-cached"]

    def test_service_fields(self):
        t, files, doc, svc = self.render()
        self.assertEqual(svc["image"], "localhost/programs-cached:" + makefile_version())
        self.assertEqual(svc["command"], ["-c", "/etc/programs-cached/programs-cached.conf"])
        self.assertIs(svc["read_only"], True)
        self.assertEqual(svc["restart"], "unless-stopped")
        self.assertEqual(svc["environment"], {"CREDENTIALS_DIRECTORY": "/run/secrets"})
        mounts = {}
        for v in svc["volumes"]:
            host, ctr, *mode = v.split(":")
            mounts[ctr] = (tutor_render.resolve_compose_path(self.tmpdir, host), mode)
        env = Path(self.tmpdir) / "env"
        self.assertEqual(mounts["/etc/programs-cached/programs-cached.conf"],
                         (str(env / CONF_IN_ENV), ["ro"]))
        self.assertEqual(mounts["/run/secrets/client-secret"],
                         (str(env / "plugins/programs-cached/apps/secrets/client-secret"), ["ro"]))
        self.assertEqual(mounts["/var/lib/programs-cached"],
                         (str(Path(self.tmpdir) / "data" / "programs-cached"), []))
        self.assertEqual(len(mounts), 3, svc["volumes"])
        for ctr, (host, _) in mounts.items():
            if ctr != "/var/lib/programs-cached":
                self.assertTrue(Path(host).is_file(), host)
        self.assertEqual(Path(mounts["/run/secrets/client-secret"][0]).read_text().strip(),
                         t.config["PROGRAMS_CACHED_OAUTH2_SECRET"])
        # Tutor's names, and each one a service of the same file.
        self.assertEqual(sorted(svc["depends_on"]), ["discovery", "lms", "permissions", "redis"])
        for dep in svc["depends_on"]:
            self.assertIn(dep, doc["services"])

    def test_permissions_service_owns_the_state_volume(self):
        t, files, doc, svc = self.render()
        perm = doc["services"]["permissions"]
        state = [v for v in svc["volumes"] if ":/var/lib/programs-cached" in v][0].split(":")[0]
        self.assertIn("%s:/mounts/programs-cached" % state, perm["volumes"])
        self.assertEqual(t.permissions_script().split(),
                         ["setowner", "1000", "/mounts/programs-cached"])

    def test_dependencies_follow_what_runs(self):
        _, _, doc, svc = self.render(RUN_REDIS=False, PLUGINS=["programs_cached"],
                                     REDIS_HOST="redis.example.net")
        self.assertEqual(sorted(d for d in svc["depends_on"] if d), ["lms", "permissions"])
        self.assertNotIn("redis", doc["services"])

    def test_redis_password_is_a_mounted_file(self):
        t, files, doc, svc = self.render(REDIS_PASSWORD="s3cret", REDIS_USERNAME="lms")
        pw = [v for v in svc["volumes"] if v.split(":")[1] == "/run/secrets/redis-password"]
        self.assertEqual(len(pw), 1, svc["volumes"])
        host = tutor_render.resolve_compose_path(self.tmpdir, pw[0].split(":")[0])
        self.assertEqual(Path(host).read_text().strip(), "s3cret")
        conf = read_conf(files[CONF_IN_ENV])
        self.assertEqual(conf["redis"]["url"], "redis://lms@redis:6379/1")
        self.assertNotIn("s3cret", files[CONF_IN_ENV])


class Configuration(PcdTestCase):
    """The rendered programs-cached.conf."""

    def render(self, **overrides):
        t = tutor_render.TutorRender(dict(WITH_DISCOVERY, **overrides))
        files = t.render_env(self.tmpdir)
        return t, files[CONF_IN_ENV], Path(self.tmpdir) / "env" / CONF_IN_ENV

    def check_config(self, path):
        """programs-cached --check-config, the client secret (and the
        Redis password) in the rendered secrets directory."""
        env = dict(os.environ, CREDENTIALS_DIRECTORY=str(path.parent / "secrets"))
        return subprocess.run([daemon_binary(), "--check-config", "-c", str(path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_values(self):
        t, text, path = self.render()
        conf = read_conf(text)
        self.assertEqual(dict(conf["discovery"]), {"oauth_url": "http://lms:8000",
                                                   "client_id": "programs-cached",
                                                   "change_key": "discovery:1:api_timestamp"})
        self.assertEqual(conf["redis"]["url"], "redis://redis:6379/1")
        self.assertEqual(conf["redis"]["key_function"], "django")
        self.assertEqual((conf["redis"]["key_prefix"], conf["redis"]["key_version"]),
                         ("default", "1"))
        self.assertEqual(conf["daemon"]["listen"], "0.0.0.0:9640")
        self.assertEqual(conf["daemon"]["state_dir"], "/var/lib/programs-cached/state")
        self.assertEqual(dict(conf["site www.myopenedx.com"]),
                         {"site_id": "2", "catalog_api_url": "http://discovery:8000/api/v1"})
        # The change key: Discovery's api_timestamp in the same Redis db.
        self.assertEqual(conf["discovery"]["change_key"], "discovery:1:api_timestamp")
        self.assertNotIn("change_source", conf["discovery"])

    def test_passes_check_config(self):
        _, _, path = self.render()
        p = self.check_config(path)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_extra_sites(self):
        _, text, path = self.render(PROGRAMS_CACHED_EXTRA_SITES=[
            {"domain": "www.myopenedx.com:8000", "site_id": 3,
             "catalog_api_url": "http://discovery:8000/api/v1"},
            {"domain": "preview.myopenedx.com", "site_id": 4}])
        conf = read_conf(text)
        self.assertEqual(conf["site www.myopenedx.com:8000"]["site_id"], "3")
        self.assertEqual(dict(conf["site preview.myopenedx.com"]), {"site_id": "4"})
        p = self.check_config(path)
        self.assertEqual(p.returncode, 0, p.stderr)


class Kubernetes(PcdTestCase):
    """k8s-deployments, k8s-volumes and the kustomization's ConfigMap."""

    def test_objects(self):
        t = tutor_render.TutorRender(WITH_DISCOVERY)
        files = t.render_env(self.tmpdir)
        deployments, volumes, configmaps = t.k8s()
        kinds = {d["kind"]: d for d in deployments}
        self.assertEqual(sorted(kinds), ["Deployment", "Secret"])
        dep, secret = kinds["Deployment"], kinds["Secret"]
        [pvc] = volumes
        self.assertEqual(pvc["kind"], "PersistentVolumeClaim")
        self.assertEqual(dep["metadata"]["name"], "programs-cached")
        spec = dep["spec"]
        self.assertEqual(spec["replicas"], 1)
        self.assertEqual(spec["strategy"]["type"], "Recreate")
        pod = spec["template"]["spec"]
        self.assertEqual(spec["selector"]["matchLabels"], spec["template"]["metadata"]["labels"])
        self.assertEqual((pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsNonRoot"]),
                         (1000, True))
        [ctr] = pod["containers"]
        self.assertEqual(ctr["image"], "localhost/programs-cached:" + makefile_version())
        self.assertEqual(ctr["args"], ["-c", "/etc/programs-cached/programs-cached.conf"])
        self.assertEqual(ctr["env"], [{"name": "CREDENTIALS_DIRECTORY", "value": "/run/secrets"}])
        self.assertIs(ctr["securityContext"]["readOnlyRootFilesystem"], True)
        self.assertIs(ctr["securityContext"]["allowPrivilegeEscalation"], False)
        # The probes ask the listener the configuration opens.
        conf = read_conf(files[CONF_IN_ENV])
        port = int(conf["daemon"]["listen"].rsplit(":", 1)[1])
        self.assertEqual(ctr["ports"], [{"name": "http", "containerPort": port}])
        self.assertEqual(ctr["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "http"})
        self.assertEqual(ctr["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "http"})
        # Each volume is an object of the plugin's, mounted where the
        # configuration and the image expect it.
        vols = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["name"]: m for m in ctr["volumeMounts"]}
        self.assertEqual(sorted(vols), sorted(mounts))
        cm = [c for c in configmaps if c["name"] == vols["config"]["configMap"]["name"]]
        self.assertEqual(len(cm), 1, configmaps)
        self.assertEqual(cm[0]["files"], [CONF_IN_ENV])
        self.assertIn(CONF_IN_ENV, files)
        self.assertEqual(mounts["config"]["mountPath"] + "/" + os.path.basename(CONF_IN_ENV),
                         "/etc/programs-cached/programs-cached.conf")
        self.assertEqual(vols["secrets"]["secret"]["secretName"], secret["metadata"]["name"])
        self.assertEqual(mounts["secrets"]["mountPath"], "/run/secrets")
        self.assertEqual(secret["stringData"],
                         {"client-secret": t.config["PROGRAMS_CACHED_OAUTH2_SECRET"]})
        self.assertEqual(vols["state"]["persistentVolumeClaim"]["claimName"],
                         pvc["metadata"]["name"])
        self.assertEqual(mounts["state"]["mountPath"], "/var/lib/programs-cached")
        self.assertTrue(conf["daemon"]["state_dir"].startswith(mounts["state"]["mountPath"] + "/"))
        self.assertEqual(pvc["spec"]["resources"]["requests"]["storage"], "1Gi")

    def test_redis_password_in_the_secret(self):
        t = tutor_render.TutorRender(dict(WITH_DISCOVERY, REDIS_PASSWORD="s3cret"))
        deployments, _, _ = t.k8s()
        [secret] = [d for d in deployments if d["kind"] == "Secret"]
        self.assertEqual(secret["stringData"]["redis-password"], "s3cret")


FAKE_MANAGE = r'''#!/usr/bin/python3
"""A stand-in for the LMS's manage.py: "lms shell -c CODE" runs CODE in
Django (auth, contenttypes and sites on SQLite); anything else is recorded."""
import json, os, sys
args = sys.argv[1:]
assert args[0] == "lms", args
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sites"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                           "NAME": os.environ["FAKE_LMS_DB"]}},
    USE_TZ=True, SECRET_KEY="fake-lms")
django.setup()
if args[1:2] == ["shell"] and args[2] == "-c":
    exec(args[3], {})
elif args[1:2] == ["migrate"]:
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
else:
    with open(os.environ["FAKE_LMS_LOG"], "a") as f:
        f.write(json.dumps(args[1:]) + "\n")
'''


class InitTask(PcdTestCase):
    """The LMS init task, run by sh against a stand-in manage.py."""

    def setUp(self):
        super().setUp()
        self.dir = Path(self.tmpdir)
        (self.dir / "manage.py").write_text(FAKE_MANAGE)
        (self.dir / "manage.py").chmod(0o755)
        self.env = dict(os.environ, FAKE_LMS_DB=str(self.dir / "lms.sqlite3"),
                        FAKE_LMS_LOG=str(self.dir / "commands.log"),
                        PYTHONWARNINGS="ignore")
        self.manage("migrate")
        # An LMS where tutor-discovery created the LMS_HOST site (id 2),
        # and the service user already exists with another e-mail.
        self.manage("shell", "-c", textwrap.dedent("""
            from django.contrib.sites.models import Site
            from django.contrib.auth import get_user_model
            Site.objects.update_or_create(id=1, defaults={"domain": "example.com"})
            Site.objects.create(id=2, domain="www.myopenedx.com", name="lms")
            Site.objects.create(id=3, domain="www.myopenedx.com:8000", name="dev")
            get_user_model().objects.create(username="lms_catalog_service_user",
                                            email="old@example.com")
            """))

    def manage(self, *args):
        p = subprocess.run(["./manage.py", "lms"] + list(args), cwd=self.dir, env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def run_task(self, **overrides):
        t = tutor_render.TutorRender(dict(WITH_DISCOVERY, **overrides))
        script = t.init_task("lms")
        (self.dir / "init.sh").write_text(script)
        p = subprocess.run(["sh", "-e", "init.sh"], cwd=self.dir, env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        log = self.dir / "commands.log"
        commands = [__import__("json").loads(l) for l in log.read_text().splitlines()] \
            if log.exists() else []
        return t, p, commands

    def test_user_and_application(self):
        t, p, commands = self.run_task()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        secret = t.config["PROGRAMS_CACHED_OAUTH2_SECRET"]
        self.assertEqual(commands, [
            ["manage_user", "lms_catalog_service_user", "lms_catalog_service_user@openedx",
             "--staff", "--unusable-password"],
            ["create_dot_application", "--grant-type", "client-credentials",
             "--client-id", "programs-cached", "--client-secret", secret,
             "--scopes", "user_id", "--update", "programs-cached",
             "lms_catalog_service_user"]])
        # The existing user got the e-mail manage_user is given.
        out = self.manage("shell", "-c", "from django.contrib.auth import get_user_model; "
                          "print(get_user_model().objects.get(username="
                          "'lms_catalog_service_user').email)")
        self.assertEqual(out.strip(), "lms_catalog_service_user@openedx")

    def test_extra_sites_checked_too(self):
        _, p, _ = self.run_task(PROGRAMS_CACHED_EXTRA_SITES=[
            {"domain": "www.myopenedx.com:8000", "site_id": 3}])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_wrong_site_id_fails_saying_what_to_set(self):
        _, p, _ = self.run_task(PROGRAMS_CACHED_SITE_ID=1, PROGRAMS_CACHED_EXTRA_SITES=[
            {"domain": "preview.myopenedx.com", "site_id": 4}])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("site www.myopenedx.com: the configuration says id 1, the LMS has id 2",
                      p.stdout)
        self.assertIn("site preview.myopenedx.com: the configuration says id 4, "
                      "the LMS has no such Site", p.stdout)
        self.assertIn("www.myopenedx.com (id 2)", p.stdout)
        self.assertIn("PROGRAMS_CACHED_SITE_ID", p.stdout)


class ComposeService(Container):
    """The rendered compose service, run by podman as docker compose would
    run it: its image, command, environment, read_only and volumes (host
    paths relative to env/local); Tutor's service names resolve to
    loopback, where the test's servers listen."""

    def __init__(self, tmpdir, service, root, **kw):
        self.service = service
        self.root = root
        super().__init__(tmpdir, {}, name="compose", image=service["image"], **kw)

    def run_argv(self):
        s = self.service
        a = [self.binary, "run", "--rm", "--name", self.cname, "--network=host"]
        for host in ("redis", "lms", "discovery"):
            a += ["--add-host", "%s:127.0.0.1" % host]
        if s.get("read_only"):
            a += ["--read-only", "--read-only-tmpfs=false"]   # as docker's
        for k, v in s.get("environment", {}).items():
            a += ["-e", "%s=%s" % (k, v)]
        for v in s.get("volumes", []):
            host, ctr, *mode = v.split(":")
            a += ["-v", ":".join([tutor_render.resolve_compose_path(self.root, host), ctr]
                                 + mode)]
        return a + [s["image"]] + list(s.get("command", []))

    def argv(self, *args):
        return self.run_argv() + [str(x) for x in args]


class ComposeRun(ImageTestCase):
    """The compose service, run for real."""

    def test_fills_tutors_redis(self):
        cat = catalog.sample()
        fake = self.start_fake(cat, require_auth=True)
        srv = RedisServer()
        self.addCleanup(srv.close)
        srv.start()
        port = free_port()
        t = tutor_render.TutorRender(dict(WITH_DISCOVERY, **{
            "REDIS_PORT": srv.port,
            "PROGRAMS_CACHED_DISCOVERY_URL": "http://discovery:%d/api/v1" % fake.port,
            "PROGRAMS_CACHED_OAUTH_URL": "http://lms:%d" % fake.port,
            "PROGRAMS_CACHED_LISTEN_PORT": port}))
        fake.client_id = t.config["PROGRAMS_CACHED_OAUTH2_KEY"]
        fake.client_secret = t.config["PROGRAMS_CACHED_OAUTH2_SECRET"]
        t.render_env(self.tmpdir)
        svc = t.compose()["services"]["programs-cached"]
        # What Tutor's permissions service does with the plugin's patch.
        uid, where = t.permissions_script().split()[1:]
        state = Path(self.tmpdir) / "data" / "programs-cached"
        state.mkdir(parents=True)
        os.chown(state, int(uid), int(uid))
        self.assertEqual(where, "/mounts/programs-cached")

        c = ComposeService(self.tmpdir, svc, self.tmpdir)
        self.addCleanup(c.close)
        c.start()
        ev = c.wait_event("refresh_succeeded", timeout=60)
        expected = reference.expected_cache([
            {"domain": "www.myopenedx.com", "site_id": 2, "catalogue": cat}])
        r = RedisReader(srv, db=1)
        self.addCleanup(r.close)
        self.assertCacheMatches(r, expected)
        self.assertEqual(srv.keys(1), {r.make_key(k) for k in expected})
        self.assertEqual(ev["programs"], len(cat["uuids"]))
        # The state directory the configuration names, inside the volume.
        c.wait_event("snapshot_saved", timeout=10)
        self.assertTrue((state / "state" / "programs-cache.snapshot").is_file())
        self.assertEqual((state / "state").stat().st_uid, int(uid))
        c.wait_health(0)
        rc, took = c.stop()
        self.assertEqual(rc, 0)
