#!/usr/bin/env bash
# Re-render docs/pipeline.png: `kedro viz build`, serve build/ on 127.0.0.1, screenshot it with
# headless Chromium (light theme, no sidebar or feature tour), crop to the graph.
# Needs the dev extras (kedro-viz) and Chromium (Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8766}
.venv/bin/kedro viz build
cat > build/light.html <<'HTML'
<script>
localStorage.setItem("KedroViz", JSON.stringify({showFeatureHints: false, theme: "light", visible: {sidebar: false, miniMap: false}}));
location.href = "/";
</script>
HTML
.venv/bin/python -m http.server "$PORT" --bind 127.0.0.1 --directory build >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER' EXIT
sleep 2
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=2 \
    --window-size=1400,1000 --virtual-time-budget=20000 --screenshot=build/screenshot.png \
    "http://127.0.0.1:$PORT/light.html" 2>/dev/null
.venv/bin/python - <<'PY'
import numpy as np
from PIL import Image

shot = np.asarray(Image.open("build/screenshot.png").convert("RGB"))
canvas = shot[80:, 300:]  # below the version label, right of the toolbars
rows, cols = np.nonzero((np.abs(canvas.astype(int) - canvas[-1, -1]).sum(axis=2) > 30))
top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
Image.fromarray(canvas[max(top - 20, 0) : bottom + 20, max(left - 20, 0) : right + 20]).save("docs/pipeline.png", optimize=True)
PY
echo "wrote docs/pipeline.png"
