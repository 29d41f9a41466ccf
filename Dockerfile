# syntax=docker/dockerfile:1
#
# syncd container image.
#   docker build -t syncd:0.1.0 .
#   docker build --build-arg BASE_IMAGE=registry.internal/python:3.11-slim-bookworm -t syncd .
# BASE_IMAGE must be Debian bookworm with Python 3.11 (python:3.11-slim-bookworm or an
# in-house equivalent); both stages use it so the venv's interpreter path matches.
ARG BASE_IMAGE=python:3.11-slim-bookworm

############################ build stage: compilers live here only
FROM ${BASE_IMAGE} AS build

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# gcc + headers for python-ldap (extra `ldap-fast`). Python headers and venv support
# are added only when the base lacks them (a Debian-python base instead of python:*-slim).
RUN set -- gcc libc6-dev libldap2-dev libsasl2-dev; \
    python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
      || set -- "$@" python3-dev; \
    python3 -c 'import ensurepip' 2>/dev/null || set -- "$@" python3-venv; \
    apt-get update \
    && apt-get install -y --no-install-recommends "$@" \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/syncd \
    && /opt/syncd/bin/pip install --upgrade "pip>=24" "setuptools>=68" "wheel>=0.43"

WORKDIR /src
# .dockerignore lets only pyproject.toml, README.md, LICENSE and syncd/ through.
COPY . .
# Builds the wheels (python-ldap is compiled here) and installs them into the venv.
# .pyc files are compiled now because the runtime root filesystem is read-only.
RUN /opt/syncd/bin/pip install ".[ldap-fast,entra,okta,google]" \
    && /opt/syncd/bin/pip uninstall -y pip setuptools wheel \
    && /opt/syncd/bin/syncd --help >/dev/null

############################ runtime stage: no compilers, no headers
FROM ${BASE_IMAGE} AS runtime

ARG SYNCD_UID=10001
ARG SYNCD_GID=10001

LABEL org.opencontainers.image.title="syncd" \
      org.opencontainers.image.description="Keeps a Nebuly project's user roster equal to the company directory" \
      org.opencontainers.image.licenses="Apache-2.0"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Runtime libraries of python-ldap only; ca-certificates for LDAPS/HTTPS trust stores.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libldap-2.5-0 libsasl2-2 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid "${SYNCD_GID}" syncd \
    && useradd --system --uid "${SYNCD_UID}" --gid "${SYNCD_GID}" \
         --home-dir /var/lib/syncd --no-create-home --shell /usr/sbin/nologin syncd \
    && install -d -m 0755 /etc/syncd \
    && install -d -m 0750 -o "${SYNCD_UID}" -g "${SYNCD_GID}" /var/lib/syncd

COPY --from=build /opt/syncd /opt/syncd
# Fails the build if a runtime library of a compiled extension is missing.
RUN ["/opt/syncd/bin/python3", "-c", "import ldap, ldap3, apscheduler, msgraph, azure.identity, okta.request_executor, googleapiclient.discovery, google.oauth2.service_account, syncd"]

# HOME=/tmp: libraries that want a cache dir get the writable tmpfs, not the read-only root.
# SYNCD_HEALTH_HOST: outside a container health.host defaults to 127.0.0.1; in one, the
# probes and the scraper come from outside, so the image binds all interfaces (a config's
# health.host still wins).
ENV PATH=/opt/syncd/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    SYNCD_HEALTH_HOST=0.0.0.0 \
    SYNCD_HEALTH_PORT=9464

USER ${SYNCD_UID}:${SYNCD_GID}
WORKDIR /var/lib/syncd

EXPOSE 9464
VOLUME ["/var/lib/syncd"]

# Docker/compose only (Kubernetes uses its own probes; OCI-format images drop it).
# Set SYNCD_HEALTH_PORT if health.port in the config is not 9464.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('SYNCD_HEALTH_PORT', '9464'), timeout=4)"]

ENTRYPOINT ["syncd"]
CMD ["run", "--config", "/etc/syncd/config.yaml"]
