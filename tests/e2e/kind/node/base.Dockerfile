# The kind node base image, built without a registry (tests/e2e/kind/build-images.sh).
# It follows kind's own images/base/Dockerfile (sigs.k8s.io/kind, the version in versions.env):
# the same files (copied from the kind module into files/), the same systemd set-up, the same
# binaries — but the Debian userspace comes from a debootstrap image (DEBIAN_IMAGE, with the
# packages kind's Dockerfile installs) and containerd, runc, crictl and the CNI plugins are the
# ones build-binaries.sh built from their Go modules (in bin/).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}

COPY files/ /
COPY bin/containerd bin/ctr bin/containerd-shim-runc-v2 bin/crictl /usr/local/bin/
COPY bin/runc /usr/local/sbin/runc
COPY bin/cni/ /opt/cni/bin/

# As kind's base: no systemd services but ours, no kernel log in journald, systemd as init.
RUN chmod 0755 /kind/bin /kind/bin/* /usr/local/bin/* /usr/local/sbin/runc /opt/cni/bin/* \
    && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
    && rm -f /lib/systemd/system/multi-user.target.wants/* \
    && rm -f /etc/systemd/system/*.wants/* \
    && rm -f /lib/systemd/system/local-fs.target.wants/* \
    && rm -f /lib/systemd/system/sockets.target.wants/*udev* \
    && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \
    && rm -f /lib/systemd/system/basic.target.wants/* \
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
    && ln -sf "$(command -v systemd || echo /lib/systemd/systemd)" /sbin/init \
    && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
    && systemctl mask systemd-binfmt.service \
    && mkdir -p /etc/kubernetes/manifests \
    && ctr oci spec \
        | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
        | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \
    && containerd --version && runc --version && crictl --version

# systemd checks the container variable; it stops on SIGRTMIN+3 (SIGTERM re-executes it)
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]
