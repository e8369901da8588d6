"""programs_cached: a Tutor plugin that runs programs-cached beside the LMS.

programs-cached keeps the LMS's programs cache (the keys cache_programs
writes) filled from Discovery, so that nobody has to run cache_programs by
hand after a change to a program.  This plugin adds:

- the image to build (IMAGES_BUILD: ``tutor images build programs-cached``,
  from the source tree this file belongs to);
- the service (``local-docker-compose-services``) and, for ``tutor k8s``,
  a Deployment with its Secret, ConfigMap and volume;
- an init task in the LMS: the service user (staff, or Discovery answers
  403 on /pathways/), the OAuth2 client-credentials application whose
  secret Tutor keeps in its config (PROGRAMS_CACHED_OAUTH2_SECRET), and a
  check that the configured Site ids are the LMS's.

Install (the plugin is this one module and the templates/ folder beside
it; a symbolic link keeps both in the source tree):

    ln -s "$PWD/contrib/tutor/programs_cached.py" "$(tutor plugins printroot)/"
    tutor plugins enable programs_cached
    tutor images build programs-cached
    tutor local launch

docs/operations.md ("Under Tutor") has the whole story and what is tested.
"""

import os

from tutor import hooks

VERSION = "0.1.0"

HERE = os.path.dirname(os.path.realpath(__file__))
TEMPLATES = os.path.join(HERE, "templates")
# The source tree the image is built from: the one this file is in, when
# it is (PROGRAMS_CACHED_SOURCE_DIR says otherwise).
_TREE = os.path.dirname(os.path.dirname(HERE))
SOURCE_DIR = _TREE if os.path.isfile(
    os.path.join(_TREE, "contrib", "container", "Containerfile")) else ""

hooks.Filters.CONFIG_DEFAULTS.add_items([
    ("PROGRAMS_CACHED_VERSION", VERSION),
    ("PROGRAMS_CACHED_DOCKER_IMAGE",
     "localhost/programs-cached:{{ PROGRAMS_CACHED_VERSION }}"),
    ("PROGRAMS_CACHED_SOURCE_DIR", SOURCE_DIR),
    # The uid the image runs as (its APP_USER_ID build argument).
    ("PROGRAMS_CACHED_APP_USER_ID", 1000),
    # Tutor's internal URLs: the LMS's OAuth2 endpoint and Discovery's API,
    # as the containers see them (not the public LMS_HOST).
    ("PROGRAMS_CACHED_OAUTH_URL", "http://lms:8000"),
    ("PROGRAMS_CACHED_DISCOVERY_URL", "http://discovery:8000/api/v1"),
    ("PROGRAMS_CACHED_OAUTH2_KEY", "programs-cached"),
    ("PROGRAMS_CACHED_SERVICE_USER", "lms_catalog_service_user"),
    # The LMS's Site for LMS_HOST.  tutor-discovery's init creates it
    # after Django's example.com (id 1), so it is usually 2; the init task
    # checks, and says what to set if it is not.
    ("PROGRAMS_CACHED_SITE_ID", 2),
    # More [site] sections: [{"domain": ..., "site_id": ...,
    # "catalog_api_url": ...}] (no catalog_api_url: an unconfigured site).
    ("PROGRAMS_CACHED_EXTRA_SITES", []),
    # The LMS's cache: Tutor's Redis, db OPENEDX_CACHE_REDIS_DB, as its
    # CACHES["default"] LOCATION names it (the password, if any, is a file).
    ("PROGRAMS_CACHED_REDIS_URL",
     "redis://{% if REDIS_USERNAME %}{{ REDIS_USERNAME }}@{% endif %}"
     "{{ REDIS_HOST }}:{{ REDIS_PORT }}/{{ OPENEDX_CACHE_REDIS_DB }}"),
    # Discovery's api_timestamp key in that Redis db (its KEY_PREFIX
    # "discovery", VERSION 1): [discovery] change_key, the change-driven
    # refresh ("" turns it off).
    ("PROGRAMS_CACHED_CHANGE_KEY", "discovery:1:api_timestamp"),
    ("PROGRAMS_CACHED_REFRESH_INTERVAL", "15m"),
    # /metrics, /healthz, /readyz: on every address, for the probes.
    ("PROGRAMS_CACHED_LISTEN_PORT", 9640),
    # k8s: the state volume (about the size of the cached values).
    ("PROGRAMS_CACHED_STATE_SIZE", "1Gi"),
])
hooks.Filters.CONFIG_UNIQUE.add_items([
    ("PROGRAMS_CACHED_OAUTH2_SECRET", "{{ 32|random_string }}"),
])

hooks.Filters.ENV_TEMPLATE_ROOTS.add_item(TEMPLATES)
hooks.Filters.ENV_TEMPLATE_TARGETS.add_item(("programs-cached/apps", "plugins"))


@hooks.Filters.IMAGES_BUILD.add()
def _build_image(images, config):
    """Build contrib/container/Containerfile from the source tree (an
    absolute path: Tutor joins it to its env directory, which keeps it)."""
    src = config.get("PROGRAMS_CACHED_SOURCE_DIR") or ""
    if src:
        images.append((
            "programs-cached", (src,), "{{ PROGRAMS_CACHED_DOCKER_IMAGE }}",
            ("--file=" + os.path.join(src, "contrib", "container", "Containerfile"),
             "--build-arg=VERSION={{ PROGRAMS_CACHED_VERSION }}",
             "--build-arg=APP_USER_ID=%s" % config.get(
                 "PROGRAMS_CACHED_APP_USER_ID", 1000))))
    return images


def _remote(images, config):
    """Pull and push the image only when it names a registry."""
    if not str(config.get("PROGRAMS_CACHED_DOCKER_IMAGE", "")).startswith(
            "localhost/"):
        images.append(("programs-cached", "{{ PROGRAMS_CACHED_DOCKER_IMAGE }}"))
    return images


hooks.Filters.IMAGES_PULL.add()(_remote)
hooks.Filters.IMAGES_PUSH.add()(_remote)

INIT_LMS = r"""
# programs-cached: the service user it acts as (staff: Discovery answers 403
# on /pathways/ to others), with the e-mail tutor-discovery gives it.
./manage.py lms shell -c "from django.contrib.auth import get_user_model; \
get_user_model().objects.filter(username='{{ PROGRAMS_CACHED_SERVICE_USER }}').exclude(email='{{ PROGRAMS_CACHED_SERVICE_USER }}@openedx').update(email='{{ PROGRAMS_CACHED_SERVICE_USER }}@openedx')"
./manage.py lms manage_user {{ PROGRAMS_CACHED_SERVICE_USER }} {{ PROGRAMS_CACHED_SERVICE_USER }}@openedx --staff --unusable-password
# Its OAuth2 application (grant type client credentials); the secret is
# PROGRAMS_CACHED_OAUTH2_SECRET in Tutor's config.
./manage.py lms create_dot_application \
    --grant-type client-credentials \
    --client-id {{ PROGRAMS_CACHED_OAUTH2_KEY }} \
    --client-secret {{ PROGRAMS_CACHED_OAUTH2_SECRET }} \
    --scopes user_id \
    --update \
    programs-cached \
    {{ PROGRAMS_CACHED_SERVICE_USER }}
# The [site] sections name Site ids (programs-by-type keys carry them): they
# must be the LMS's, or the LMS would not find those keys.
./manage.py lms shell -c "
from django.contrib.sites.models import Site
want = [('{{ LMS_HOST }}', {{ PROGRAMS_CACHED_SITE_ID }}){% for site in PROGRAMS_CACHED_EXTRA_SITES %}, ('{{ site.domain }}', {{ site.site_id }}){% endfor %}]
have = dict(Site.objects.values_list('domain', 'id'))
bad = [(d, i, have.get(d)) for d, i in want if have.get(d) != i]
for d, i, found in bad:
    print('programs-cached: site %s: the configuration says id %d, the LMS %s' % (d, i, 'has no such Site' if found is None else 'has id %d' % found))
if bad:
    print('programs-cached: the LMS has %s; set PROGRAMS_CACHED_SITE_ID (and PROGRAMS_CACHED_EXTRA_SITES) with tutor config save --set, then restart programs-cached' % ', '.join('%s (id %d)' % (d, i) for d, i in sorted(have.items())))
    raise SystemExit(1)
"
"""

# After other plugins' LMS tasks (tutor-discovery creates the Site and the
# same service user), so that the check sees the sites and staff sticks.
hooks.Filters.CLI_DO_INIT_TASKS.add_item(("lms", INIT_LMS),
                                         priority=hooks.priorities.LOW)

COMPOSE_SERVICE = """
programs-cached:
  image: {{ PROGRAMS_CACHED_DOCKER_IMAGE }}
  command: ["-c", "/etc/programs-cached/programs-cached.conf"]
  restart: unless-stopped
  read_only: true
  environment:
    CREDENTIALS_DIRECTORY: /run/secrets
  volumes:
    - ../plugins/programs-cached/apps/programs-cached.conf:/etc/programs-cached/programs-cached.conf:ro
    - ../plugins/programs-cached/apps/secrets/client-secret:/run/secrets/client-secret:ro
    {% if REDIS_PASSWORD %}- ../plugins/programs-cached/apps/secrets/redis-password:/run/secrets/redis-password:ro{% endif %}
    - ../../data/programs-cached:/var/lib/programs-cached
  depends_on:
    - permissions
    {% if RUN_REDIS %}- redis{% endif %}
    {% if RUN_LMS %}- lms{% endif %}
    {% if "discovery" in PLUGINS|default([]) %}- discovery{% endif %}
"""

K8S_DEPLOYMENT = """
---
apiVersion: v1
kind: Secret
metadata:
  name: programs-cached
  labels:
    app.kubernetes.io/name: programs-cached
type: Opaque
stringData:
  client-secret: "{{ PROGRAMS_CACHED_OAUTH2_SECRET }}"
  {% if REDIS_PASSWORD %}redis-password: "{{ REDIS_PASSWORD }}"{% endif %}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: programs-cached
  labels:
    app.kubernetes.io/name: programs-cached
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: programs-cached
  strategy:
    type: Recreate
  template:
    metadata:
      labels:
        app.kubernetes.io/name: programs-cached
    spec:
      securityContext:
        runAsUser: {{ PROGRAMS_CACHED_APP_USER_ID }}
        runAsGroup: {{ PROGRAMS_CACHED_APP_USER_ID }}
        runAsNonRoot: true
        fsGroup: {{ PROGRAMS_CACHED_APP_USER_ID }}
        fsGroupChangePolicy: "OnRootMismatch"
      containers:
        - name: programs-cached
          image: {{ PROGRAMS_CACHED_DOCKER_IMAGE }}
          args: ["-c", "/etc/programs-cached/programs-cached.conf"]
          env:
            - name: CREDENTIALS_DIRECTORY
              value: /run/secrets
          ports:
            - name: http
              containerPort: {{ PROGRAMS_CACHED_LISTEN_PORT }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 30
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 30
            failureThreshold: 3
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: config
              mountPath: /etc/programs-cached
              readOnly: true
            - name: secrets
              mountPath: /run/secrets
              readOnly: true
            - name: state
              mountPath: /var/lib/programs-cached
      volumes:
        - name: config
          configMap:
            name: programs-cached-config
        - name: secrets
          secret:
            secretName: programs-cached
            defaultMode: 0440
        - name: state
          persistentVolumeClaim:
            claimName: programs-cached
"""

K8S_VOLUME = """
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: programs-cached
  labels:
    app.kubernetes.io/component: volume
    app.kubernetes.io/name: programs-cached
spec:
  accessModes:
    - ReadWriteOnce
  resources:
    requests:
      storage: {{ PROGRAMS_CACHED_STATE_SIZE }}
"""

hooks.Filters.ENV_PATCHES.add_items([
    ("local-docker-compose-services", COMPOSE_SERVICE),
    # Tutor's permissions service gives the state directory to the uid.
    ("local-docker-compose-permissions-volumes",
     "- ../../data/programs-cached:/mounts/programs-cached"),
    ("local-docker-compose-permissions-command",
     "setowner {{ PROGRAMS_CACHED_APP_USER_ID }} /mounts/programs-cached"),
    ("k8s-deployments", K8S_DEPLOYMENT),
    ("k8s-volumes", K8S_VOLUME),
    ("kustomization-configmapgenerator", """
- name: programs-cached-config
  files:
    - plugins/programs-cached/apps/programs-cached.conf
"""),
])
