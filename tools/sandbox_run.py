"""Runs INSIDE the sandbox (untrusted side): execute one notebook with nbclient, keep at most
``--max-output`` bytes of output per cell, write the executed notebook.

    python -I sandbox_run.py IN.ipynb OUT.ipynb --cell-timeout S --max-output BYTES

Nothing this writes is trusted: tools/sandbox.py takes only the outputs back, attaches them to
its own copy of the cells and checks them (see docs/INSTRUCTORS.md, threat model).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile

import nbformat
from nbclient import NotebookClient
from traitlets.config import Config

TRUNCATED = "\n[output truncated by the grader: over {limit} bytes in this cell]\n"


class CappedClient(NotebookClient):
    """A client that keeps at most ``max_output`` bytes of outputs per cell."""

    max_output = 2 * 2**20

    def process_message(self, msg, cell, cell_index):
        content = msg.get("content", {})
        if msg.get("msg_type") in {"stream", "display_data", "execute_result", "error", "update_display_data"}:
            used = self._used.get(cell_index, 0)
            size = len(json.dumps(content, default=str))
            if used + size > self.max_output:
                if used <= self.max_output:  # the first message over the limit: say so, once
                    self._used[cell_index] = self.max_output + 1
                    cell.outputs.append(nbformat.v4.new_output(
                        "stream", name="stdout", text=TRUNCATED.format(limit=self.max_output)))
                return None
            self._used[cell_index] = used + size
        return super().process_message(msg, cell, cell_index)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook")
    parser.add_argument("out")
    parser.add_argument("--cell-timeout", type=int, default=120)
    parser.add_argument("--max-output", type=int, default=2 * 2**20)
    args = parser.parse_args()
    try:  # the kernel (same user) may not read this process's memory for the grader's nonces
        import ctypes
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except Exception:
        pass
    nb = nbformat.read(args.notebook, as_version=4)
    os.unlink(args.notebook)  # nor read the instrumented notebook from disk
    # Unix sockets, as `make course` (tools/run_lessons.py) runs the lessons
    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = tempfile.mkdtemp(prefix="k-") + "/k"
    client = CappedClient(
        nb, config=config, timeout=args.cell_timeout, kernel_name="python3", allow_errors=True,
        interrupt_on_timeout=True, record_timing=False, startup_timeout=120,
        error_on_timeout={"ename": "CellTimeoutError", "evalue": "",
                          "traceback": [f"CellTimeoutError: the cell ran over {args.cell_timeout} s"]},
        # the kernel's working directory is not on its sys.path: a torch.py written there
        # cannot shadow a module (ipykernel otherwise puts '' first)
        extra_arguments=["--HistoryManager.hist_file=:memory:",
                         "--IPKernelApp.exec_lines=import sys as _s; _s.path[:] = [p for p in _s.path "
                         "if p not in ('', '.') and not p.startswith('/sandbox')]; del _s"],
        resources={"metadata": {"path": os.getcwd()}})
    client.max_output = args.max_output
    client._used = {}
    try:
        client.execute()
    except Exception as error:  # noqa: BLE001  (e.g. the kernel died: os._exit, a crash, a kill)
        # what ran so far is kept; the trusted side sees which cells never ran
        nb.metadata["sandbox_error"] = f"{type(error).__name__}: {str(error)[:500]}"
    with open(args.out + ".part", "w") as f:
        nbformat.write(nb, f)
    os.replace(args.out + ".part", args.out)


if __name__ == "__main__":
    main()
