# syntax=docker/dockerfile:1
#
# syncd container image, two variants from this one file:
#   docker build --build-arg VARIANT=slim -t syncd:0.1.0-slim .   # CSV + LDAP (C backend)
#   docker build --build-arg VARIANT=full -t syncd:0.1.0-full .   # + Entra ID, Okta, Google
#   docker build --build-arg BASE_IMAGE=registry.internal/python:3.11-slim-bookworm ...
# BASE_IMAGE must be Debian bookworm with Python 3.11 (python:3.11-slim-bookworm or an
# in-house equivalent); every stage uses it so the venv's interpreter path matches.
# Python packages come from requirements/<VARIANT>.txt (exact versions, with hashes;
# refreshed by scripts/lock.sh), never from whatever is newest on build day.
ARG BASE_IMAGE=python:3.11-slim-bookworm

############################ build stage: compilers live here only
FROM ${BASE_IMAGE} AS build
ARG VARIANT=slim

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# gcc + headers for python-ldap (in both variants). Python headers and venv support
# are added only when the base lacks them (a Debian-python base instead of python:*-slim).
RUN set -- gcc libc6-dev libldap2-dev libsasl2-dev; \
    python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
      || set -- "$@" python3-dev; \
    python3 -c 'import ensurepip' 2>/dev/null || set -- "$@" python3-venv; \
    apt-get update \
    && apt-get install -y --no-install-recommends "$@" \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY requirements/ requirements/
# Two venvs: /opt/build-tools has pip, setuptools and wheel; /opt/syncd (the one that
# ships) gets no pip at all: `pip --python` installs into it from outside.
RUN case "${VARIANT}" in slim|full) ;; \
      *) echo "VARIANT must be slim or full, not '${VARIANT}'" >&2; exit 1 ;; esac \
    && python3 -m venv /opt/build-tools \
    && /opt/build-tools/bin/pip install --require-hashes -r requirements/build.txt \
    && python3 -m venv --without-pip /opt/syncd \
    && /opt/build-tools/bin/pip --python /opt/syncd/bin/python3 install --no-compile \
         --require-hashes -r "requirements/${VARIANT}.txt"

# .dockerignore lets only pyproject.toml, README.md, LICENSE, requirements/ and syncd/ in.
COPY pyproject.toml README.md LICENSE ./
COPY syncd/ syncd/
# syncd's own wheel, without dependencies: all of them came from the lock file above.
# .pyc files are compiled now because the runtime root filesystem is read-only; the
# Graph SDK's 16,700 generated modules are left out (syncd imports a few dozen, which
# Python compiles in memory at start-up): their .pyc files would add 125 MB. aenum (an
# Okta SDK dependency) ships a Python 2 file it never imports, which cannot compile.
RUN /opt/build-tools/bin/pip wheel --no-deps --no-build-isolation -w /tmp/wheels . \
    && /opt/build-tools/bin/pip --python /opt/syncd/bin/python3 install --no-deps --no-compile \
         /tmp/wheels/syncd-*.whl \
    && /opt/syncd/bin/python3 -m compileall -q -j 0 \
         -x '/msgraph/generated/|/aenum/_py2\.py$' /opt/syncd/lib \
    && /opt/syncd/bin/python3 -c 'import syncd.app.cli' \
    && if [ "${VARIANT}" = slim ] && /opt/syncd/bin/python3 -c 'import msgraph' 2>/dev/null; then \
         echo "slim image must not contain the Entra SDK" >&2; exit 1; fi

############################ rootfs stage: the runtime files, caches removed
FROM ${BASE_IMAGE} AS rootfs

ARG VARIANT=slim
ARG SYNCD_UID=10001
ARG SYNCD_GID=10001
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Runtime libraries of python-ldap; ca-certificates (the OS trust store syncd uses for
# HTTPS and LDAPS); tini, the init that reaps zombies as PID 1.
# apt's caches are removed whatever the base left in them (a debootstrap'd base keeps
# ~90 MB of .deb files and package lists); docs, man pages and translations are
# dropped too (copyright files stay), and so are files nothing in a syncd container
# reads: glibc's iconv charset modules (8 MB; Python has its own codecs), pydoc's
# help texts and the stdlib test helpers, tini's static twin. The final stage copies
# this tree into one fresh layer, so nothing deleted here is still shipped underneath.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libldap-2.5-0 libsasl2-2 ca-certificates tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old \
              /var/log/apt /var/log/dpkg.log /var/log/alternatives.log \
              /usr/share/man /usr/share/info /usr/lib/x86_64-linux-gnu/gconv \
              /usr/lib/aarch64-linux-gnu/gconv /usr/bin/tini-static \
    && python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])' \
       | xargs -I{} rm -rf {}/pydoc_data {}/test {}/idlelib {}/turtledemo \
    && find /usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete \
    && find /usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + \
    && groupadd --system --gid "${SYNCD_GID}" syncd \
    && useradd --system --uid "${SYNCD_UID}" --gid "${SYNCD_GID}" \
         --home-dir /var/lib/syncd --no-create-home --shell /usr/sbin/nologin syncd \
    && install -d -m 0755 /etc/syncd \
    && install -d -m 0750 -o "${SYNCD_UID}" -g "${SYNCD_GID}" /var/lib/syncd

COPY --from=build /opt/syncd /opt/syncd
# Fails the build if a runtime library of a compiled extension is missing.
RUN /opt/syncd/bin/python3 -c 'import ldap, ldap3, apscheduler, truststore, syncd.app.cli' \
    && if [ "${VARIANT}" = full ]; then /opt/syncd/bin/python3 -c 'import msgraph, azure.identity, okta.request_executor, googleapiclient.discovery, google.oauth2.service_account'; fi

############################ runtime: one layer, no compilers, no headers, no pip
FROM scratch AS runtime

ARG SYNCD_UID=10001
ARG SYNCD_GID=10001
ARG VARIANT=slim

# The whole tree on purpose (DL3067): one layer without what the base's layers hold
# and this build deleted (apt caches above all).
# hadolint ignore=DL3067
COPY --from=rootfs / /

LABEL org.opencontainers.image.title="syncd" \
      org.opencontainers.image.description="Keeps a Nebuly project's user roster equal to the company directory" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.nebuly.syncd.variant="${VARIANT}"

# FROM scratch inherits no ENV from the base: PATH covers python:*-slim (/usr/local/bin)
# and Debian python (/usr/bin). HOME=/tmp: libraries that want a cache dir get the
# writable tmpfs, not the read-only root. SYNCD_HEALTH_HOST: outside a container
# health.host defaults to 127.0.0.1; in one, the probes and the scraper come from
# outside, so the image binds all interfaces (a config's health.host still wins).
ENV PATH=/opt/syncd/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    SYNCD_HEALTH_HOST=0.0.0.0 \
    SYNCD_HEALTH_PORT=9464 \
    SYNCD_IMAGE_VARIANT=${VARIANT}

USER ${SYNCD_UID}:${SYNCD_GID}
WORKDIR /var/lib/syncd

EXPOSE 9464
VOLUME ["/var/lib/syncd"]

# Docker/compose only (Kubernetes uses its own probes; OCI-format images drop it).
# Set SYNCD_HEALTH_PORT if health.port in the config is not 9464.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('SYNCD_HEALTH_PORT', '9464'), timeout=4)"]

# tini is PID 1: it forwards SIGTERM to syncd, reaps orphaned children (left by
# `kubectl exec`/`docker exec`) and exits with syncd's exit code.
ENTRYPOINT ["/usr/bin/tini", "--", "syncd"]
CMD ["run", "--config", "/etc/syncd/config.yaml"]
