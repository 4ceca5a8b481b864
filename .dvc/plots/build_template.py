"""Build ``offline.html``: DVC's plots page with Vega, Vega-Lite and Vega-Embed inlined, so that the HTML
`dvc plots show` / `dvc plots diff` write renders without a network (DVC's own page loads them from a CDN).

The versions are DVC's (dvc_render's ``VegaRenderer.SCRIPTS``); each npm tarball is checked against the
integrity the registry publishes. Run ``make dvc-plots-template`` after changing a version; the output is
committed (``.dvc/config`` points ``plots.html_template`` at it).
"""

import base64
import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

PACKAGES = {  # name: (version, file in the tarball, sha512 integrity from the npm registry)
    "vega": (
        "5.20.2",
        "package/build/vega.min.js",
        "qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw==",
    ),
    "vega-lite": (
        "5.2.0",
        "package/build/vega-lite.min.js",
        "Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw==",
    ),
    "vega-embed": (
        "6.18.2",
        "package/build/vega-embed.min.js",
        "wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg==",
    ),
}
PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def script(name: str, version: str, member: str, integrity: str) -> str:
    with urllib.request.urlopen(f"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz", timeout=60) as response:
        tarball = response.read()
    digest = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    if digest != integrity:
        raise SystemExit(f"{name}@{version}: sha512 {digest} is not the registry's {integrity}")
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        code = archive.extractfile(member).read().decode()
    if "</script" in code:
        raise SystemExit(f"{name}@{version}: cannot be inlined (contains </script)")
    return f"    <!-- {name}@{version} (BSD-3-Clause) -->\n    <script>{code}</script>"


def main() -> None:
    scripts = "\n".join(script(name, *package) for name, package in PACKAGES.items())
    target = Path(__file__).with_name("offline.html")
    target.write_text(PAGE.format(scripts=scripts))
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
