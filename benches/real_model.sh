#!/usr/bin/env bash
# Real-model figures (BENCHMARKS.md, "Real model"): llama.cpp's server (PyPI xllamacpp) with
# SmolLM2-135M-Instruct on this machine: generation and prompt tokens/s, then student and
# teacher call times through the release binary with the default caps (student.max_tokens
# 300, teacher.max_tokens 1500), both roles text-only on the one server.
#   benches/real_model.sh [FRAMES]   (default 8)
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-8}
scripts/real-model-setup
PYTHON=$(sed -n 's/^PYTHON=//p' target/real-model/env)
MODEL=$(sed -n 's/^MODEL=//p' target/real-model/env)
cargo build --release -q
work=$(mktemp -d)
trap 'exec 3>&-; rm -rf "$work"' EXIT
mkfifo "$work/in"
"$PYTHON" tests/real_model/serve.py "$MODEL" --ctx 8192 --parallel 2 < "$work/in" > "$work/url" 2>/dev/null &
exec 3> "$work/in"   # the server runs until this closes
for _ in $(seq 100); do grep -q URL= "$work/url" 2>/dev/null && break; sleep 0.2; done
url=$(sed -n 's/^URL=//p' "$work/url")
echo "server: $url"
"$PYTHON" - "$url" <<'PY'
import json, sys, urllib.request
url = sys.argv[1]
skill = open("skills/skill.txt").read()
gen, prompt = [], []
for i in range(3):
    body = {"model": "smollm2", "max_tokens": 256, "temperature": 0, "seed": i,
            "messages": [{"role": "system", "content": skill},
                         {"role": "user", "content": "A man lies on the kitchen floor next to a ladder. Describe the scene."}]}
    r = json.load(urllib.request.urlopen(urllib.request.Request(
        url + "/v1/chat/completions", json.dumps(body).encode(), {"content-type": "application/json"})))
    t = r["timings"]
    gen.append(t["predicted_per_second"]); prompt.append(t["prompt_per_second"])
print(f"generation {sorted(gen)[1]:.0f} tokens/s, prompt {sorted(prompt)[1]:.0f} tokens/s (median of 3)")
PY
cp -r skills "$work/skills"
cat > "$work/config.toml" <<TOML
[student]
host = "$url"
model = "smollm2"
kind = "openai"
text_only = true
timeout_secs = 300
[teacher]
host = "$url"
model = "smollm2"
kind = "openai"
text_only = true
timeout_secs = 300
[source]
kind = "folder"
path = "$(pwd)/eval/images"
fps = 1.0
min_change = 0.0
[policy]
audit_every = 1
[paths]
skills = "$work/skills"
logs = "$work/logs"
eval = "$(pwd)/eval"
[privacy]
save_frames = false
TOML
./target/release/gemmaedge-tui --headless --max-frames "$frames" --config "$work/config.toml" > /dev/null
"$PYTHON" - "$work"/logs/*.jsonl <<'PY'
import json, statistics, sys
ev = [json.loads(l) for f in sys.argv[1:] for l in open(f)]
s = [e["latency_ms"] for e in ev if e["type"] == "student_answer"]
t = [e["latency_ms"] for e in ev if e["type"] == "teacher_verdict"]
cut = sum(1 for e in ev if e["type"] == "student_answer" and any(r["kind"] == "cut" for r in e["reasons"]))
part = sum(1 for e in ev if e["type"] == "teacher_verdict" and e["verdict"].get("truncated"))
print(f"student: {len(s)} answers, median {statistics.median(s)/1000:.1f} s, max {max(s)/1000:.1f} s, {cut} cut at 300 tokens")
if t:
    print(f"teacher: {len(t)} verdicts, median {statistics.median(t)/1000:.1f} s, max {max(t)/1000:.1f} s, {part} partial (cut at 1500 tokens)")
PY
