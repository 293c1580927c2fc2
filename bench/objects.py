#!/usr/bin/env python3
"""Serval's object store benchmark: a large object up, down and copied through the S3 API, against plain cp.

One file of random bytes (default 1 GB; --size-mb or SERVAL_BENCH_OBJECT_MB for less) is, in one Serval process:
1. uploaded with boto3's upload_file (what `aws s3 cp FILE s3://…` does: multipart, 8 MiB parts, 10 threads);
2. downloaded with download_file (`aws s3 cp s3://… FILE`: ranged GETs);
3. copied with one CopyObject (copy_object), then with boto3's managed copy (`aws s3 cp s3://… s3://…`: UploadPartCopy
   of 8 MiB ranges, 10 threads).
Each copy is checked (SHA-256 of the downloaded file and of the copies' files). The baselines are `cp` of the same
file on the same disk in the same run, and `cp` followed by fsync (Serval flushes every object before renaming it
into place), each the median of three runs. Serval's RSS is sampled from idle to the end; the report gives each
phase's time, MB/s, peak RSS and growth over idle, and the ratios to the baselines. It never asserts on them. Raw
results go to bench/results/objects-*.json. Run it through `bench/run.sh objects`, or directly with any Python that has boto3.
"""

import argparse
import datetime
import hashlib
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench import REPO_DIR, RSSSampler, Server, _on_signal, cpu_busy, finish_run, log, save_results, serval_info, serval_process

BUCKET = "bench"
MIB = 1 << 20


def write_random(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MIB))
            f.write(chunk)
            left -= len(chunk)
        f.flush()
        os.fsync(f.fileno())


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def timed(action):
    start = time.monotonic()
    action()
    return time.monotonic() - start


def plain_copies(source, folder, runs=3):
    """The baselines: cp, and cp then fsync of the copy; each the median of `runs` runs, alternating (the page cache's
    write-back of one run slows the next, so a single run is noisy)."""
    target = folder / "cp.bin"

    def cp():
        subprocess.run(["cp", source, target], check=True)

    def cp_fsync():
        cp()
        with open(target, "rb") as f:
            os.fsync(f.fileno())

    times = {"cp_s": [], "cp_fsync_s": []}
    for _ in range(runs):
        for name, action in (("cp_s", cp), ("cp_fsync_s", cp_fsync)):
            times[name].append(timed(action))
            target.unlink()
            os.sync()
    return {**{name: statistics.median(values) for name, values in times.items()},
            "runs": {name: values for name, values in times.items()}}


def run(ctx, results):
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    source = ctx.tmp / "source.bin"
    log(f"writing {ctx.size_mb} MiB of random bytes to {source}")
    write_random(source, ctx.size)
    source_digest = sha256(source)
    log("baseline: cp, cp + fsync")
    results["baseline"] = plain_copies(source, ctx.tmp)
    log(f"  cp {results['baseline']['cp_s']:.2f} s, cp + fsync {results['baseline']['cp_fsync_s']:.2f} s")

    with serval_process(ctx, "serval-objects") as (server, _, s3_url):
        s3 = boto3.client("s3", endpoint_url=s3_url, aws_access_key_id="bench", aws_secret_access_key="bench",
                          region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, read_timeout=900, retries={"max_attempts": 1}))
        s3.create_bucket(Bucket=BUCKET)
        transfer = TransferConfig()  # the AWS CLI's defaults: 8 MiB threshold and parts, 10 threads
        phases = {}
        with RSSSampler(server.proc.pid, ctx.rss_interval) as rss:
            with rss.phase("idle"):
                time.sleep(1.0)
            with rss.phase("upload (upload_file)"):
                s3.upload_file(str(source), BUCKET, "big.bin", Config=transfer)
            downloaded = ctx.tmp / "downloaded.bin"
            with rss.phase("download (download_file)"):
                s3.download_file(BUCKET, "big.bin", str(downloaded), Config=transfer)
            with rss.phase("CopyObject (copy_object)"):
                copied = s3.copy_object(Bucket=BUCKET, Key="copy.bin", CopySource={"Bucket": BUCKET, "Key": "big.bin"})
            with rss.phase("multipart copy (s3.copy, UploadPartCopy)"):
                s3.copy({"Bucket": BUCKET, "Key": "big.bin"}, BUCKET, "copy-parts.bin", Config=transfer)
        phases = rss.report()
        checks = {
            "download_sha256_ok": sha256(downloaded) == source_digest,
            "copy_etag_ok": copied["CopyObjectResult"]["ETag"] == s3.head_object(Bucket=BUCKET, Key="big.bin")["ETag"],
            "copy_size_ok": s3.head_object(Bucket=BUCKET, Key="copy.bin")["ContentLength"] == ctx.size,
            "multipart_copy_size_ok": s3.head_object(Bucket=BUCKET, Key="copy-parts.bin")["ContentLength"] == ctx.size,
        }
        objects = ctx.tmp / "serval-objects-data" / "objects" / BUCKET
        checks["copy_sha256_ok"] = sha256(objects / "copy.bin") == source_digest
        checks["multipart_copy_sha256_ok"] = sha256(objects / "copy-parts.bin") == source_digest
    idle = phases["idle"]["serval_peak_mb"]
    for phase in phases.values():
        phase["mb_per_s"] = ctx.size_mb / phase["seconds"] if phase["seconds"] else None
        phase["serval_growth_mb"] = phase["serval_peak_mb"] - idle
    results["phases"] = phases
    results["checks"] = checks
    if not all(checks.values()):
        results["failures"]["checks"] = [name for name, ok in checks.items() if not ok]


def print_report(ctx, results):
    print(f"\nObject store benchmark: {ctx.size_mb} MiB, Serval {results.get('build', '?')} build")
    baseline = results.get("baseline")
    if baseline:
        print(f"  {'plain cp':<44} {baseline['cp_s']:8.2f} s  {ctx.size_mb / baseline['cp_s']:8.0f} MB/s")
        print(f"  {'plain cp + fsync':<44} {baseline['cp_fsync_s']:8.2f} s  {ctx.size_mb / baseline['cp_fsync_s']:8.0f} MB/s")
    for name, phase in results.get("phases", {}).items():
        if name == "idle":
            print(f"  {'Serval idle':<44} {'':>10}  {'':>13}  RSS {phase['serval_peak_mb']:6.0f} MB")
            continue
        ratio = ""
        if baseline and "copy" in name.lower():
            ratio = (f"  {phase['seconds'] / baseline['cp_s']:.2f}x cp, "
                     f"{phase['seconds'] / baseline['cp_fsync_s']:.2f}x cp+fsync")
        print(f"  {name:<44} {phase['seconds']:8.2f} s  {phase['mb_per_s']:8.0f} MB/s  RSS peak "
              f"{phase['serval_peak_mb']:6.0f} MB (+{phase['serval_growth_mb']:.0f}){ratio}")
    if "checks" in results:
        print(f"  checks: {'all OK' if all(results['checks'].values()) else results['checks']}")
    print("  goals: CopyObject within 2x of plain cp; Serval RSS growth < 100 MB")
    for name, error in results.get("failures", {}).items():
        print(f"  FAILED {name}: {error}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=int(os.environ.get("SERVAL_BENCH_OBJECT_MB", "1024")),
                        help="the object's size in MiB (default 1024, or SERVAL_BENCH_OBJECT_MB)")
    parser.add_argument("--serval", default=str(REPO_DIR / ".build" / "release" / "serval"),
                        help="the serval binary (default .build/release/serval)")
    parser.add_argument("--temp-dir", help="where the file, the copies and Serval's data go (default: the system's)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temp dir (data, logs)")
    args = parser.parse_args()
    if not os.access(args.serval, os.X_OK):
        parser.error(f"no serval binary at {args.serval}: swift build -c release --product serval")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    ctx = argparse.Namespace(
        serval=os.path.abspath(args.serval), size_mb=args.size_mb, size=args.size_mb * MIB, start_timeout=120.0,
        rss_interval=0.025, tmp=Path(tempfile.mkdtemp(prefix="serval-objects-bench-", dir=args.temp_dir)))
    started_at = datetime.datetime.now()
    results = {"failures": {}, "build": serval_info(ctx.serval)["build"],
               "settings": {"size_mb": ctx.size_mb, "temp_dir": str(ctx.tmp.parent)}}
    try:
        log(f"temp dir {ctx.tmp}")
        results["cpu_busy_before"] = cpu_busy(1.0)
        if results["cpu_busy_before"] > 0.2:
            log(f"note: the machine was {results['cpu_busy_before']:.0%} busy before the run; figures will suffer")
        run(ctx, results)
    except Exception as error:  # noqa: BLE001 - the figures so far are still worth printing
        results["failures"]["run"] = f"{type(error).__name__}: {error}"
        log(f"  !! the run failed: {error}")
        if Server.last_started is not None:
            log(Server.last_started.log_tail())
    finally:
        finish_run(ctx, args.keep_temp)
    print_report(ctx, results)
    save_results("objects", started_at, results, serval_binary=serval_info(ctx.serval))


if __name__ == "__main__":
    main()
