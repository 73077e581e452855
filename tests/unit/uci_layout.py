"""Writes small datasets in UCI-HAR's official layout, and serves files on loopback."""

from __future__ import annotations

import http.server
import threading
import zipfile
from pathlib import Path

import numpy as np

from tinyhil.models.datasets import HAR_CHANNELS


def write_layout(root: Path, n_train: int = 12, n_test: int = 6, seed: int = 0) -> Path:
    """Creates ``root/UCI HAR Dataset/{train,test}`` with random windows; returns the dataset folder."""
    rng = np.random.default_rng(seed)
    ds = root / "UCI HAR Dataset"
    for part, n, subjects in (("train", n_train, (1, 3, 5)), ("test", n_test, (2, 4))):
        sig = ds / part / "Inertial Signals"
        sig.mkdir(parents=True, exist_ok=True)
        for ch in HAR_CHANNELS:
            np.savetxt(sig / f"{ch}_{part}.txt", rng.normal(size=(n, 128)), fmt="%.7e")
        np.savetxt(ds / part / f"y_{part}.txt", (np.arange(n) % 6) + 1, fmt="%d")
        np.savetxt(ds / part / f"subject_{part}.txt", np.resize(subjects, n), fmt="%d")
    (ds / "activity_labels.txt").write_text(
        "1 WALKING\n2 WALKING_UPSTAIRS\n3 WALKING_DOWNSTAIRS\n4 SITTING\n5 STANDING\n6 LAYING\n"
    )
    return ds


def zip_layout(ds: Path, out: Path, nested: bool = False) -> Path:
    """Zips the dataset folder like the official zip (or nested, like the UCI archive's download)."""
    inner = out if not nested else out.with_name("UCI HAR Dataset.zip")
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(ds.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(ds.parent).as_posix())
    if nested:
        with zipfile.ZipFile(out, "w") as zf:
            zf.write(inner, "UCI HAR Dataset.zip")
            zf.writestr("UCI HAR Dataset.names", "raw inertial signals\n")
        inner.unlink()
    return out


class FileServer:
    """Serves one file on 127.0.0.1 with HTTP Range support.

    Args:
        payload: The bytes to serve.
        cut_first: Number of initial responses that stop after ``cut_at`` bytes (a broken transfer).
        cut_at: Where a broken response stops.
        ranges: Whether Range requests are honoured.
    """

    def __init__(self, payload: bytes, cut_first: int = 0, cut_at: int = 0, ranges: bool = True):
        self.payload, self.cut_first, self.cut_at, self.ranges = payload, cut_first, cut_at, ranges
        self.requests: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if (rng and server.ranges) else 0
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                self.end_headers()
                if len(server.requests) <= server.cut_first:
                    self.wfile.write(body[: server.cut_at])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/uci.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
