"""Read server/CA/client cert paths from the kubeconfig that pki.sh writes (fixed layout,
so no YAML parser is needed under the system python)."""


def read(path: str) -> tuple[str, str, str, str]:
    vals: dict[str, str] = {}
    with open(path) as f:
        for line in f:
            k, sep, v = line.strip().partition(": ")
            if sep and k in ("server", "certificate-authority", "client-certificate", "client-key"):
                vals[k] = v.strip()
    return (
        vals["server"],
        vals["certificate-authority"],
        vals["client-certificate"],
        vals["client-key"],
    )
