"""Cluster DNS for the e2e cluster: keep a dnsmasq hosts file in step with Services and
Endpoints (A records only) and SIGHUP dnsmasq on change. CoreDNS is in no reachable
registry. Standard library only; talks to the apiserver with the admin client cert."""

import argparse
import json
import os
import signal
import ssl
import sys
import time
import urllib.request

import yaml_free_kubeconfig as kcfg


def fetch(ctx: ssl.SSLContext, server: str, path: str) -> dict:
    with urllib.request.urlopen(server + path, context=ctx, timeout=5) as r:
        return json.load(r)


def render(services: dict, endpoints: dict, domain: str) -> str:
    eps = {
        (e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoints.get("items", [])
    }
    lines = []
    for s in services.get("items", []):
        ns, name = s["metadata"]["namespace"], s["metadata"]["name"]
        fqdn = f"{name}.{ns}.svc.{domain}"
        cip = s.get("spec", {}).get("clusterIP")
        if cip and cip != "None":
            lines.append(f"{cip} {fqdn}")
            continue
        for subset in (eps.get((ns, name)) or {}).get("subsets") or []:
            for addr in subset.get("addresses") or []:
                lines.append(f"{addr['ip']} {fqdn}")
                if addr.get("hostname"):
                    lines.append(f"{addr['ip']} {addr['hostname']}.{fqdn}")
    return "\n".join(sorted(set(lines))) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--dnsmasq-pid", type=int, required=True)
    ap.add_argument("--domain", default="cluster.local")
    ap.add_argument("--interval", type=float, default=0.25)
    a = ap.parse_args()
    server, ca, cert, key = kcfg.read(a.kubeconfig)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    last = None
    while True:
        try:
            text = render(
                fetch(ctx, server, "/api/v1/services"),
                fetch(ctx, server, "/api/v1/endpoints"),
                a.domain,
            )
            if text != last:
                tmp = a.hosts + ".tmp"
                with open(tmp, "w") as f:
                    f.write(text)
                os.replace(tmp, a.hosts)
                os.kill(a.dnsmasq_pid, signal.SIGHUP)
                last = text
        except ProcessLookupError:
            print("dnsmasq is gone; exiting", file=sys.stderr)
            return 1
        except Exception as e:  # apiserver restarting etc.: keep trying
            print(f"dns-watcher: {e!r}", file=sys.stderr)
        time.sleep(a.interval)


if __name__ == "__main__":
    sys.exit(main())
