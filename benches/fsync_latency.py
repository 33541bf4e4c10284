#!/usr/bin/env python3
"""How long a commit's `write` + `fdatasync` takes on this disk.

    python3 benches/fsync_latency.py [--dir DIR] [--commits N] [--bytes N]

The write-ahead log answers a client only after `fdatasync`, so this is
the floor under the ingest p99. Three ways of placing a commit's bytes in
the log file are timed, each alone and then while another thread writes
and fsyncs 16 MiB files and renames them (what flushes and merges of
Parquet parts do to the same disk):

- append:    the file grows; `fdatasync` must also commit the file
             system's journal (new size, new blocks);
- overwrite: the bytes land on blocks written (zeros) and synced before;
             no metadata to commit;
- fallocate: blocks reserved with posix_fallocate but never written
             (on ext4, "unwritten" extents: converting them is metadata).

The busy runs are made twice: once with the other thread writing each
file whole and fsyncing it ("busy"), and once trickling it to the disk
as the store writes Parquet parts ("trickled": `sync_file_range` on each
256 KiB as it is written, waiting for it before writing on; Linux only,
see `store/src/writeback.rs`).

Each commit writes `--bytes` (default 300 KiB, about one 512-span export
request in the log) and then sleeps 2 ms, as a paced client would.
Prints p50 / p90 / p99 / max in milliseconds.
"""

import argparse
import ctypes
import os
import tempfile
import threading
import time


CHUNK = 256 << 10


def sync_file_range():
    """libc's sync_file_range(fd, offset, nbytes, flags), or None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return call


def background_writer(directory, stop, trickle):
    data = os.urandom(1 << 20) * 16
    i = 0
    while not stop.is_set():
        path = os.path.join(directory, f"bg{i % 4}.bin")
        with open(path, "wb") as f:
            if trickle:
                # WAIT_BEFORE | WRITE | WAIT_AFTER
                for offset in range(0, len(data), CHUNK):
                    f.write(data[offset : offset + CHUNK])
                    f.flush()
                    trickle(f.fileno(), offset, CHUNK, 1 | 2 | 4)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(path, path + ".done")
        fd = os.open(directory, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        i += 1


def run(directory, mode, load, commits, size):
    stop = threading.Event()
    thread = None
    if load != "idle":
        trickle = sync_file_range() if load == "trickled" else None
        thread = threading.Thread(
            target=background_writer, args=(directory, stop, trickle)
        )
        thread.start()
    path = os.path.join(directory, "log.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    span = commits * size
    if mode == "overwrite":
        zeros = b"\0" * (1 << 20)
        for _ in range(span // len(zeros) + 1):
            os.write(fd, zeros)
        os.fdatasync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
    elif mode == "fallocate":
        os.posix_fallocate(fd, 0, span + (1 << 20))
        os.fsync(fd)
    payload = os.urandom(size)
    latencies = []
    for _ in range(commits):
        start = time.perf_counter()
        os.write(fd, payload)
        os.fdatasync(fd)
        latencies.append(time.perf_counter() - start)
        time.sleep(0.002)
    os.close(fd)
    stop.set()
    if thread:
        thread.join()
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    latencies.sort()
    n = len(latencies)

    def at(q):
        return latencies[min(n - 1, int(n * q))] * 1e3

    print(
        f"{mode:<9} {load:<9} p50 {at(0.5):6.2f}  p90 {at(0.9):6.2f}  "
        f"p99 {at(0.99):6.2f}  max {latencies[-1] * 1e3:6.2f} ms"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="a directory on the disk to measure")
    parser.add_argument("--commits", type=int, default=600)
    parser.add_argument("--bytes", type=int, default=300 << 10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        loads = ["idle", "busy"]
        if sync_file_range() is not None:
            loads.append("trickled")
        for load in loads:
            for mode in ("append", "overwrite", "fallocate"):
                run(directory, mode, load, args.commits, args.bytes)


if __name__ == "__main__":
    main()
