#!/usr/bin/python3
"""An OCI runtime for kind's node containers on hosts that withhold a capability.

kind runs its nodes with ``docker run --privileged``, and Docker 20.10 gives a privileged
container every capability the kernel knows. Where the host's own bounding set lacks one
(the CI machines lack CAP_SYS_RESOURCE, which is also why they refuse lower oom_score_adj
values), runc cannot grant it and the container does not start ("unable to apply caps").
This wrapper removes from the OCI spec the capabilities this process cannot hold, then runs
runc with the same arguments; everything else about privileged mode stays. Docker uses it
for kind's nodes only (tests/e2e/kind/runtime/docker adds --runtime to kind's `docker run`;
tests/e2e/kind/host.sh registers the runtime with the Docker engine).

It edits the bundle's config.json on `create`/`run`, and the process spec of `exec
--process FILE` (docker exec --privileged asks for every capability too).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable
from typing import Any

# Linux capability numbers 0..40, in order (include/uapi/linux/capability.h).
CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
)


def held_capabilities(status: str) -> set[str]:
    """The CAP_* names in the CapBnd line of a /proc/PID/status text."""
    for line in status.splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return {f"CAP_{c}" for i, c in enumerate(CAPABILITIES) if mask >> i & 1}
    raise ValueError("no CapBnd line")


def strip_process(process: dict[str, Any], held: set[str]) -> list[str]:
    """Drop the capabilities outside ``held`` from an OCI process spec; return the dropped."""
    known = {f"CAP_{c}" for c in CAPABILITIES}
    dropped: set[str] = set()
    caps = process.get("capabilities") or {}
    for kind, names in caps.items():
        keep = [n for n in names if n in held or n not in known]
        dropped.update(n for n in names if n not in keep)
        caps[kind] = keep
    return sorted(dropped)


def spec_file(args: list[str]) -> tuple[str, bool] | None:
    """(path, is_bundle_config) of the spec this runc command line starts from, if any."""
    sub = next((a for a in args if a in ("create", "run", "exec")), None)
    if sub in ("create", "run"):
        bundle = _value(args, "--bundle", "-b") or "."
        return os.path.join(bundle, "config.json"), True
    if sub == "exec":
        process = _value(args, "--process", "-p")
        return (process, False) if process else None
    return None


def _value(args: Iterable[str], *names: str) -> str | None:
    items = list(args)
    for i, a in enumerate(items):
        for n in names:
            if a == n and i + 1 < len(items):
                return items[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def edit(path: str, is_config: bool, held: set[str]) -> None:
    with open(path) as f:
        doc = json.load(f)
    process = doc.setdefault("process", {}) if is_config else doc
    if strip_process(process, held):
        with open(path, "w") as f:
            json.dump(doc, f)


def main() -> None:
    args = sys.argv[1:]
    target = spec_file(args)
    if target:
        with open("/proc/self/status") as f:
            edit(*target, held_capabilities(f.read()))
    runc = os.environ.get("STRATA_KIND_RUNC") or shutil.which("runc") or "/usr/sbin/runc"
    os.execv(runc, [runc, *args])  # noqa: S606  (becoming runc is the point)


if __name__ == "__main__":
    main()
