#!/usr/bin/env python3
"""Serval's object store benchmark: a large object up, down and copied through the S3 API, against plain cp.

One file of random bytes (default 1 GB; --size-mb or SERVAL_BENCH_OBJECT_MB for less) is, in one Serval process:
1. uploaded with boto3's upload_file (what `aws s3 cp FILE s3://…` does: multipart, 8 MiB parts, 10 threads);
2. downloaded with download_file (`aws s3 cp s3://… FILE`: ranged GETs);
3. copied with one CopyObject (copy_object), then as `aws s3 cp s3://… s3://…` copies it: UploadPartCopy of 8 MiB
   ranges on 10 threads, then CompleteMultipartUpload, each step timed apart; in rounds (--rounds, default 3), each
   after its own baseline runs and compared with them, since the load of a shared machine changes within a run;
4. when the AWS CLI is installed, the same three transfers with `aws s3 cp` itself (its start-up time is measured
   apart, with `aws --version`).
Each copy is checked (SHA-256 of the downloaded files and of the copies' files). The baselines are `cp` of the same
file on the same disk in the same run, and `cp` followed by fsync (Serval flushes every object before renaming it
into place), each the median of three runs. Serval's RSS is sampled from idle to the end; the report gives each
phase's time, MB/s, peak RSS and growth over idle, and the ratios to the baselines. It never asserts on them. Raw
results go to bench/results/objects-*.json. Run it through `bench/run.sh objects`, or directly with any Python that has
boto3 (and the AWS CLI on PATH, or --aws PATH: `pip install awscli`).
"""

import argparse
import concurrent.futures
import contextlib
import datetime
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
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


def plain_copies(source, folder, times, runs=3):
    """Adds `runs` timings of the baselines, cp and cp then fsync of the copy, to `times`, alternating (the page cache's
    write-back of one run slows the next, so a single run is noisy); returns the baselines: each the median of every
    timing so far, with the timings."""
    target = folder / "cp.bin"

    def cp():
        subprocess.run(["cp", source, target], check=True)

    def cp_fsync():
        cp()
        with open(target, "rb") as f:
            os.fsync(f.fileno())

    for _ in range(runs):
        for name, action in (("cp_s", cp), ("cp_fsync_s", cp_fsync)):
            times.setdefault(name, []).append(timed(action))
            target.unlink()
            os.sync()
    return {**{name: statistics.median(values) for name, values in times.items()},
            "runs": {name: list(values) for name, values in times.items()}}


@contextlib.contextmanager
def settled(rss, name):
    """A phase of `rss` that starts once the page cache's dirty pages are written back (the previous phase's
    write-back, e.g. of a downloaded file, would slow this one down, as between the baselines' runs); yields a
    namespace whose `seconds` is set to the phase's duration at its end."""
    os.sync()
    timer = argparse.Namespace(seconds=None)
    start = time.monotonic()
    with rss.phase(name):
        yield timer
        timer.seconds = time.monotonic() - start


def multipart_copy(s3, source_key, target_key, size, part_size=8 * MIB, threads=10):
    """Copies an object as `aws s3 cp s3://… s3://…` (s3transfer) does: UploadPartCopy of `part_size` ranges on
    `threads` threads, then CompleteMultipartUpload. Returns the seconds of the parts and of the completion."""
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=target_key)["UploadId"]

    def part(number):
        first = (number - 1) * part_size
        last = min(first + part_size, size) - 1
        result = s3.upload_part_copy(Bucket=BUCKET, Key=target_key, UploadId=upload, PartNumber=number,
                                     CopySource={"Bucket": BUCKET, "Key": source_key},
                                     CopySourceRange=f"bytes={first}-{last}")
        return {"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]}

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(part, range(1, (size + part_size - 1) // part_size + 1)))
    parts_done = time.monotonic()
    s3.complete_multipart_upload(Bucket=BUCKET, Key=target_key, UploadId=upload, MultipartUpload={"Parts": parts})
    return {"parts_s": parts_done - start, "complete_s": time.monotonic() - parts_done}


def run(ctx, results):
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    source = ctx.tmp / "source.bin"
    log(f"writing {ctx.size_mb} MiB of random bytes to {source}")
    write_random(source, ctx.size)
    source_digest = sha256(source)
    log("baseline: cp, cp + fsync")
    times = {}
    results["baseline"] = plain_copies(source, ctx.tmp, times)
    log(f"  cp {results['baseline']['cp_s']:.2f} s, cp + fsync {results['baseline']['cp_fsync_s']:.2f} s")

    with serval_process(ctx, "serval-objects") as (server, _, s3_url):
        s3 = boto3.client("s3", endpoint_url=s3_url, aws_access_key_id="bench", aws_secret_access_key="bench",
                          region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, read_timeout=900, retries={"max_attempts": 1}))
        s3.create_bucket(Bucket=BUCKET)
        objects = ctx.tmp / "serval-objects-data" / "objects" / BUCKET
        transfer = TransferConfig()  # the AWS CLI's defaults: 8 MiB threshold and parts, 10 threads
        checks = {}
        rounds = []
        with RSSSampler(server.proc.pid, ctx.rss_interval) as rss:
            with settled(rss, "idle"):
                time.sleep(1.0)
            with settled(rss, "upload (upload_file)"):
                s3.upload_file(str(source), BUCKET, "big.bin", Config=transfer)
            downloaded = ctx.tmp / "downloaded.bin"
            with settled(rss, "download (download_file)"):
                s3.download_file(BUCKET, "big.bin", str(downloaded), Config=transfer)
            checks["download_sha256_ok"] = sha256(downloaded) == source_digest
            downloaded.unlink()
            etag = s3.head_object(Bucket=BUCKET, Key="big.bin")["ETag"]
            # Each round times the baselines right before its copies, and its ratios compare the two: on a shared
            # machine the load changes from minute to minute.
            for number in range(1, ctx.rounds + 1):
                log(f"round {number} of {ctx.rounds}: cp, cp + fsync, then the copies")
                plain_copies(source, ctx.tmp, times, runs=1)
                copy_round = {"cp_s": times["cp_s"][-1], "cp_fsync_s": times["cp_fsync_s"][-1]}
                with settled(rss, f"CopyObject (copy_object) #{number}") as timer:
                    copied = s3.copy_object(Bucket=BUCKET, Key="copy.bin", CopySource={"Bucket": BUCKET, "Key": "big.bin"})
                copy_round["copy_object_s"] = timer.seconds
                with settled(rss, f"multipart copy (UploadPartCopy + Complete) #{number}") as timer:
                    copy_round.update(multipart_copy(s3, "big.bin", "copy-parts.bin", ctx.size))
                copy_round["multipart_copy_s"] = timer.seconds
                rounds.append(copy_round)
                for name, ok in (("copy_etag_ok", copied["CopyObjectResult"]["ETag"] == etag),
                                 ("copy_sha256_ok", sha256(objects / "copy.bin") == source_digest),
                                 ("multipart_copy_sha256_ok", sha256(objects / "copy-parts.bin") == source_digest)):
                    checks[name] = checks.get(name, True) and ok
                s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "copy.bin"}, {"Key": "copy-parts.bin"}]})
            if ctx.aws:
                aws_phases(ctx, s3_url, rss, source, results)
        phases = rss.report()
        log("baseline again: cp, cp + fsync")
        results["baseline"] = plain_copies(source, ctx.tmp, times)
        if ctx.aws:
            checks["aws_upload_sha256_ok"] = sha256(objects / "cli.bin") == source_digest
            checks["aws_download_sha256_ok"] = sha256(ctx.tmp / "cli-downloaded.bin") == source_digest
            checks["aws_copy_sha256_ok"] = sha256(objects / "cli-copy.bin") == source_digest
    idle = phases["idle"]["serval_peak_mb"]
    for phase in phases.values():
        phase["mb_per_s"] = ctx.size_mb / phase["seconds"] if phase["seconds"] else None
        phase["serval_growth_mb"] = phase["serval_peak_mb"] - idle
    results["phases"] = phases
    results["rounds"] = rounds
    results["checks"] = checks
    if not all(checks.values()):
        results["failures"]["checks"] = [name for name, ok in checks.items() if not ok]


def aws_phases(ctx, s3_url, rss, source, results):
    """`aws s3 cp` up, down and from object to object (the CLI's defaults: 8 MiB parts, 10 threads), with any user
    configuration of the CLI set aside."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}

    def aws(*arguments):
        subprocess.run([ctx.aws, *arguments, "--endpoint-url", s3_url, "--only-show-errors"], check=True, env=env)

    results["aws_cli"] = subprocess.run([ctx.aws, "--version"], capture_output=True, text=True, env=env).stdout.strip()
    results["aws_cli_start_s"] = statistics.median(
        timed(lambda: subprocess.run([ctx.aws, "--version"], capture_output=True, check=True, env=env)) for _ in range(3))
    with settled(rss, "aws s3 cp FILE s3://… (upload)"):
        aws("s3", "cp", str(source), f"s3://{BUCKET}/cli.bin")
    with settled(rss, "aws s3 cp s3://… FILE (download)"):
        aws("s3", "cp", f"s3://{BUCKET}/cli.bin", str(ctx.tmp / "cli-downloaded.bin"))
    with settled(rss, "aws s3 cp s3://… s3://… (UploadPartCopy)"):
        aws("s3", "cp", f"s3://{BUCKET}/cli.bin", f"s3://{BUCKET}/cli-copy.bin")


def print_report(ctx, results):
    print(f"\nObject store benchmark: {ctx.size_mb} MiB, Serval {results.get('build', '?')} build")
    baseline = results.get("baseline")
    if baseline:
        for label, name in (("plain cp", "cp_s"), ("plain cp + fsync", "cp_fsync_s")):
            runs = baseline["runs"][name]
            print(f"  {label:<44} {baseline[name]:8.2f} s  {ctx.size_mb / baseline[name]:8.0f} MB/s  (median of "
                  f"{len(runs)} runs: {min(runs):.2f} to {max(runs):.2f} s)")
    rounds = results.get("rounds", [])
    paired = {"CopyObject (copy_object)": "copy_object_s", "multipart copy (UploadPartCopy + Complete)": "multipart_copy_s"}
    shown = set()
    for name, phase in results.get("phases", {}).items():
        if name == "idle":
            print(f"  {'Serval idle':<44} {'':>10}  {'':>13}  RSS {phase['serval_peak_mb']:6.0f} MB")
            continue
        base = name.split(" #")[0]
        if base in paired:
            if base in shown:
                continue
            shown.add(base)
            # A copy repeated in rounds: the median time and, against the baselines, the median of each round's ratio
            # to the baselines timed just before it.
            key = paired[base]
            same = [p for n, p in results["phases"].items() if n.split(" #")[0] == base]
            seconds = statistics.median(r[key] for r in rounds)
            peak = max(p["serval_peak_mb"] for p in same)
            growth = max(p["serval_growth_mb"] for p in same)
            ratio = (f"  {statistics.median(r[key] / r['cp_s'] for r in rounds):.2f}x cp, "
                     f"{statistics.median(r[key] / r['cp_fsync_s'] for r in rounds):.2f}x cp+fsync")
            print(f"  {base:<44} {seconds:8.2f} s  {ctx.size_mb / seconds:8.0f} MB/s  RSS peak {peak:6.0f} MB "
                  f"(+{growth:.0f}){ratio}")
            print(f"  {'':<4}{f'median of {len(rounds)} rounds, s:':<40} " + ", ".join(f"{r[key]:.2f}" for r in rounds)
                  + "  (cp: " + ", ".join(f"{r['cp_s']:.2f}" for r in rounds) + "; cp + fsync: "
                  + ", ".join(f"{r['cp_fsync_s']:.2f}" for r in rounds) + ")")
            if key == "multipart_copy_s":
                print(f"  {'':<4}{'UploadPartCopy of every part':<40} {statistics.median(r['parts_s'] for r in rounds):8.2f} s")
                print(f"  {'':<4}{'CompleteMultipartUpload':<40} {statistics.median(r['complete_s'] for r in rounds):8.2f} s")
            continue
        ratio = ""
        if baseline and "copy" in name.lower():
            ratio = (f"  {phase['seconds'] / baseline['cp_s']:.2f}x cp, "
                     f"{phase['seconds'] / baseline['cp_fsync_s']:.2f}x cp+fsync")
        print(f"  {name:<44} {phase['seconds']:8.2f} s  {phase['mb_per_s']:8.0f} MB/s  RSS peak "
              f"{phase['serval_peak_mb']:6.0f} MB (+{phase['serval_growth_mb']:.0f}){ratio}")
    if "aws_cli" in results:
        print(f"  ({results['aws_cli']}; its start-up, `aws --version`, takes {results['aws_cli_start_s']:.2f} s of each "
              "aws phase)")
    elif results.get("aws_cli_missing"):
        print("  (no AWS CLI: its phases were skipped; `pip install awscli` adds them)")
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
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of the baselines and the two copies, each compared with its round's (default 3)")
    beside = Path(sys.executable).parent / "aws"  # bench/.venv's, from bench/requirements.txt
    parser.add_argument("--aws", default=str(beside) if beside.exists() else shutil.which("aws"),
                        help="the AWS CLI for the `aws s3 cp` phases (default: the one beside this Python, else aws on "
                             "PATH; `pip install awscli`)")
    args = parser.parse_args()
    if not os.access(args.serval, os.X_OK):
        parser.error(f"no serval binary at {args.serval}: swift build -c release --product serval")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    ctx = argparse.Namespace(
        serval=os.path.abspath(args.serval), size_mb=args.size_mb, size=args.size_mb * MIB, start_timeout=120.0,
        rss_interval=0.025, tmp=Path(tempfile.mkdtemp(prefix="serval-objects-bench-", dir=args.temp_dir)), aws=args.aws,
        rounds=args.rounds)
    started_at = datetime.datetime.now()
    results = {"failures": {}, "build": serval_info(ctx.serval)["build"],
               "settings": {"size_mb": ctx.size_mb, "rounds": ctx.rounds, "temp_dir": str(ctx.tmp.parent)}}
    if not ctx.aws:
        results["aws_cli_missing"] = True
        log("no AWS CLI on PATH (pip install awscli, or --aws PATH): the `aws s3 cp` phases are skipped")
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
