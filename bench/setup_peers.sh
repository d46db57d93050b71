#!/usr/bin/env bash
# Create the virtualenv that bench/langgraph_bench.py runs in. LangGraph lives in its own
# virtualenv so that its dependencies never mix with podium's, and `python bench/overhead.py`
# runs it as a separate process on the same machine, in the same session.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-langgraph"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet langgraph==1.2.22
"$venv/bin/python" -c "import importlib.metadata as m; print('langgraph', m.version('langgraph'), 'in', '$venv')"
