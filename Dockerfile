# arkserve's own image: every part (`arkserve api | gateway | reconciler | registry`) from one image, as
# deploy/kubernetes runs them. No public registry and no network during the build: deploy/image/build.sh makes the
# Debian base with debootstrap + docker import and the wheels on the host, then runs `docker build` on this file.
ARG BASE=arkserve/base:bookworm
FROM ${BASE}
COPY dist/wheels/ /tmp/wheels/
RUN python3 -m venv /opt/arkserve \
 && /opt/arkserve/bin/pip install --no-index --find-links /tmp/wheels --no-cache-dir --disable-pip-version-check "arkserve[kubernetes]" \
 && rm -rf /tmp/wheels \
 && echo 'arkserve:x:10001:10001:arkserve:/var/lib/arkserve:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'arkserve:x:10001:' >>/etc/group \
 && mkdir -p /var/lib/arkserve && chown 10001:10001 /var/lib/arkserve && chmod 700 /var/lib/arkserve
ENV PATH=/opt/arkserve/bin:/usr/local/bin:/usr/bin:/bin \
    ARKSERVE_DATA_DIR=/var/lib/arkserve \
    ARKSERVE_REGISTRY_BINARY=/usr/bin/docker-registry \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8
USER 10001:10001
WORKDIR /var/lib/arkserve
# API + console, registry, gateway (host addressing)
EXPOSE 7780 7782 8443
ENTRYPOINT ["arkserve"]
CMD ["--help"]
