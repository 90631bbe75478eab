"""Write a one-layer image archive (the `docker save` format, which `ctr images import` reads)
holding a single static binary. Used for the pause image: no registry is reachable here."""

import argparse
import hashlib
import io
import json
import tarfile


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--path", required=True, help="path of the binary inside the image")
    ap.add_argument("--entrypoint", required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = t.gettarinfo(a.binary, arcname=a.path.lstrip("/"))
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0
        info.mode = 0o755
        with open(a.binary, "rb") as f:
            t.addfile(info, f)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": [a.entrypoint], "User": "65535:65535"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "mkimage.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_dir = hashlib.sha256(layer_bytes).hexdigest()
    manifest = [{"Config": config_name, "RepoTags": [a.tag], "Layers": [layer_dir + "/layer.tar"]}]

    with tarfile.open(a.out, mode="w") as out:
        for name, data in (
            (config_name, config_bytes),
            (layer_dir + "/layer.tar", layer_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            out.addfile(ti, io.BytesIO(data))


if __name__ == "__main__":
    main()
