"""Point-in-time recovery in deploy/local/dr-drill (issue 22): pgBackRest on the drill's own PostgreSQL,
the writer that counts acknowledged writes, and the drill's phase P (point_in_time).

The drill archives with the shipped deploy/pgbackrest files (only the paths change: repository,
spool and logs live in the drill's temporary folder), crashes the primary and its replica the way a
lost host does (SIGKILL, data deleted, spool gone) and starts the restored data directory itself:
deploy/local/services would initdb a missing cluster and writes to it before recovery has ended.

With the S3 blob store (DRILL_BLOB_STORE=s3) the repository is in a bucket of the drill's Garage
cluster instead (pgbackrest-s3.conf: its own bucket and key, through the TLS terminator that
deploy/local/services puts in front of Garage; only endpoint, port, CA file and key change), and the
crash takes the database hosts only: Garage, on hosts of its own, keeps the repository and the site
files."""
import glob
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from opslib import REPO, Api, App, log, services

CONF_DIR = os.path.join(REPO, "deploy", "pgbackrest")


def archive_settings():
    """archive_mode / archive_command / archive_timeout of deploy/pgbackrest/postgresql.archive.conf."""
    out = {}
    for ln in open(os.path.join(CONF_DIR, "postgresql.archive.conf")):
        ln = ln.strip()
        if ln and not ln.startswith("#") and "=" in ln:
            k, v = ln.split("=", 1)
            out[k.strip()] = v.strip().strip("'")
    return out


def pg_bin(name):
    d = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))[-1]
    return os.path.join(d, name)


def as_pg(*cmd, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, **kw)


def children(pid):
    """Direct children of pid (the postmaster's backends and auxiliary processes)."""
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid):
            out.append(int(stat.split("/")[2]))
    return out


def pids_with_arg(arg):
    """Processes whose command line holds arg (the drill's unique pgBackRest config path)."""
    out = []
    for cl in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            if arg.encode() in open(cl, "rb").read():
                out.append(int(cl.split("/")[2]))
        except OSError:
            continue
    return [p for p in out if p != os.getpid()]


def conf_settings(name):
    """{(section, key): value} of a shipped pgBackRest config file."""
    out, section = {}, None
    for ln in open(os.path.join(CONF_DIR, name)):
        ln = ln.strip()
        if ln.startswith("["):
            section = ln.strip("[]")
        elif ln and not ln.startswith("#") and "=" in ln:
            k, v = ln.split("=", 1)
            out[(section, k.strip())] = v.strip()
    return out


# The settings of the repository's storage: the only ones the two shipped files may differ in.
REPO_STORAGE = ("repo1-type", "repo1-path") + tuple(
    f"repo1-{k}" for k in ("s3-endpoint", "storage-port", "storage-ca-file", "s3-bucket", "s3-region",
                           "s3-uri-style", "s3-key", "s3-key-secret"))


def conf_drift():
    """Settings that differ between pgbackrest.conf and pgbackrest-s3.conf beyond the repository's storage."""
    a, b = conf_settings("pgbackrest.conf"), conf_settings("pgbackrest-s3.conf")
    return sorted(f"[{s}] {k}" for s, k in set(a) | set(b) if k not in REPO_STORAGE and a.get((s, k)) != b.get((s, k)))


def wait_gone(pids, timeout=15):
    """Until every killed process has exited (a busy machine takes a moment to tear a
    postmaster down; PostgreSQL refuses to start while its old PID still runs)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        alive = []
        for p in pids:
            try:
                with open(f"/proc/{p}/stat") as f:
                    if f.read().split(") ", 1)[1].startswith("Z"):
                        continue  # exited, waiting to be reaped
                alive.append(p)
            except (FileNotFoundError, IndexError):
                pass
        if not alive:
            return
        time.sleep(0.1)

class Pitr:
    def __init__(self, tmp, state, addr, backups, port=5432, s3=None):
        """s3: the HOSTING_PITR_S3_* settings of deploy/local/services env (the repository in Garage),
        or None (the repository in the drill's folder)."""
        self.s3 = s3
        self.dir = os.path.join(tmp, "pgbackrest")
        self.conf = os.path.join(self.dir, "pgbackrest.conf")
        self.pgdir = os.path.join(state, "postgres")
        self.data = os.path.join(self.pgdir, "primary")
        self.sock = os.path.join(self.pgdir, "primary-sock")
        self.addr, self.port = addr, port
        self.settings = archive_settings()
        self.env = dict(os.environ, PGBACKREST_CONFIG=self.conf, PGHOST=self.sock, PGPORT=str(port),
                        BACKUP_DIR=backups, PG_DATA_DIR=self.data,
                        PITR_METRICS_FILE=os.path.join(backups, "hosting_pitr.prom"))

    def psql(self, sql, db="postgres"):
        r = subprocess.run(["psql", "-X", "-qAt", "-h", self.addr, "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-c", sql], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    @staticmethod
    def ensure_installed():
        """pgBackRest from Debian, like deploy/local/services installs PostgreSQL."""
        if shutil.which("pgbackrest"):
            return
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", "pgbackrest"]
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(cmd, env=env, capture_output=True, check=True)

    def write_config(self):
        """The shipped pgbackrest.conf (pgbackrest-s3.conf with S3) with the drill's paths, a fresh
        passphrase and, with S3, the drill's Garage: endpoint, port, CA and key."""
        paths = {"repo1-path": "repo", "spool-path": "spool", "log-path": "log", "lock-path": "lock"}
        over = {k: os.path.join(self.dir, v) for k, v in paths.items()}
        over.update({"pg1-path": self.data, "pg1-socket-path": self.sock, "pg1-port": str(self.port),
                     "repo1-cipher-pass": os.urandom(24).hex()})
        shipped = "pgbackrest.conf"
        if self.s3:
            shipped = "pgbackrest-s3.conf"
            del over["repo1-path"]   # a path inside the bucket: the shipped one
            s = self.s3
            over.update({"repo1-s3-endpoint": s["HOSTING_PITR_S3_ENDPOINT"],
                         "repo1-storage-port": s["HOSTING_PITR_S3_PORT"],
                         "repo1-storage-ca-file": s["HOSTING_PITR_S3_CA_FILE"],
                         "repo1-s3-bucket": s["HOSTING_PITR_S3_BUCKET"],
                         "repo1-s3-region": s["HOSTING_PITR_S3_REGION"],
                         "repo1-s3-key": s["HOSTING_PITR_S3_KEY"],
                         "repo1-s3-key-secret": s["HOSTING_PITR_S3_KEY_SECRET"]})
        lines, seen = [], set()
        for ln in open(os.path.join(CONF_DIR, shipped)):
            k = ln.split("=", 1)[0].strip()
            if "=" in ln and not ln.lstrip().startswith("#") and k in over:
                seen.add(k)
                ln = f"{k}={over[k]}\n"
            lines.append(ln)
        glob_at = lines.index("[global]\n") + 1
        lines[glob_at:glob_at] = [f"{k}={v}\n" for k, v in over.items() if k not in seen and not k.startswith("pg1-")]
        os.makedirs(self.dir, exist_ok=True)
        for d in paths.values():
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        with open(self.conf, "w") as f:
            f.writelines(lines)
        os.chmod(self.conf, 0o600)   # it holds the repository passphrase
        subprocess.run(["chown", "-R", "postgres:postgres", self.dir], check=True)

    def enable_archiving(self):
        """archive_* from the shipped snippet (ALTER SYSTEM, so a restored cluster keeps archiving),
        the primary restarted for archive_mode, then the stanza created and checked."""
        s = self.settings
        cmd = s["archive_command"].replace("pgbackrest ", f"pgbackrest --config={self.conf} ", 1)
        for k, v in (("archive_mode", s["archive_mode"]), ("archive_command", cmd),
                     ("archive_timeout", s["archive_timeout"])):
            v = v.replace("'", "''")
            assert self.psql(f"ALTER SYSTEM SET {k} = '{v}'") is not None, k
        # -l: the server must not inherit our captured stdout (the call would wait for it to exit).
        r = as_pg(pg_bin("pg_ctl"), "-D", self.data, "-l", os.path.join(self.pgdir, "primary.log"),
                  "-w", "-t", "60", "-m", "fast", "restart")
        assert r.returncode == 0, r.stderr
        for _ in range(100):
            if self.psql("SHOW archive_mode") == "on":
                break
            time.sleep(0.1)
        return self.run("setup")

    def run(self, *args, env=None):
        return subprocess.run([os.path.join(REPO, "deploy/backup/pitr"), *args], env=env or self.env,
                              capture_output=True, text=True)

    def crash(self):
        """The database host is lost: primary and replica killed (no shutdown, nothing flushed to the
        archive), then the archiver's leftovers on that host: the async pgBackRest process and its spool."""
        killed = []
        for name in ("primary", "replica"):
            pidf = os.path.join(self.pgdir, name, "postmaster.pid")
            if os.path.exists(pidf):
                pid = int(open(pidf).readline())
                kids = children(pid)
                killed += [pid] + kids
                for p in [pid] + kids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        t = time.time()
        for p in pids_with_arg(self.conf):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_gone(killed)
        return t

    def wipe(self):
        """Data of primary and replica and the local spool deleted; the repository stays. The lost
        host's socket lock files go too (a new host has none)."""
        for d in (self.data, os.path.join(self.pgdir, "replica"), os.path.join(self.dir, "spool")):
            shutil.rmtree(d, ignore_errors=True)
        for lock in glob.glob(os.path.join(self.sock, ".s.PGSQL.*")):
            os.remove(lock)
        os.makedirs(os.path.join(self.dir, "spool"))
        subprocess.run(["chown", "postgres:postgres", os.path.join(self.dir, "spool")], check=True)

    def start_restored(self, timeout=300):
        """Start PostgreSQL on the restored data directory and wait until recovery ended (promoted)."""
        opts = f"-c listen_addresses={self.addr} -c port={self.port} -c unix_socket_directories={self.sock}"
        r = as_pg(pg_bin("pg_ctl"), "-D", self.data, "-l", os.path.join(self.pgdir, "primary.log"),
                  "-w", "-t", str(timeout), "-o", opts, "start")
        assert r.returncode == 0, r.stdout + r.stderr
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.psql("SELECT pg_is_in_recovery()") == "f":
                return
            time.sleep(0.2)
        raise RuntimeError("the restored primary is still in recovery; see primary.log")

    def repo_files_encrypted(self):
        """(files checked, files without the cipher header) in the repository: the drill's folder, or
        the bucket's objects (copied out with rclone, straight from Garage with the repository's key)."""
        repo = os.path.join(self.dir, "repo")
        if self.s3:
            repo = os.path.join(self.dir, "bucket-copy")
            r = subprocess.run(["rclone", "--config", "/dev/null", "copy", f"pitr:{self.s3['HOSTING_PITR_S3_BUCKET']}",
                                repo], env=self.rclone_env(), capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr[-500:]
        n, plain = 0, []
        for root, _, files in os.walk(repo):
            for fn in files:
                n += 1
                with open(os.path.join(root, fn), "rb") as f:
                    if f.read(8) != b"Salted__":
                        plain.append(fn)
        return n, plain

    def refused_without_its_ca(self):
        """pgBackRest against the bucket trusting another CA (made here) instead of the terminator's: the
        TLS certificate is really verified. Returns (refused, pgBackRest's message)."""
        ca = os.path.join(self.dir, "other-ca.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other CA",
                        "-keyout", os.path.join(self.dir, "other-ca.key"), "-out", ca], capture_output=True, check=True)
        os.chmod(ca, 0o644)
        r = as_pg("pgbackrest", f"--config={self.conf}", f"--repo1-storage-ca-file={ca}", "--io-timeout=5", "repo-ls")
        return r.returncode != 0 and "unable to verify certificate" in r.stderr, r.stderr.strip()[-200:]

    def rclone_env(self):
        """rclone's remote `pitr:` on the repository's bucket, with the repository's key."""
        s = self.s3
        rc = {"RCLONE_CONFIG_PITR_TYPE": "s3", "RCLONE_CONFIG_PITR_PROVIDER": "Other",
              "RCLONE_CONFIG_PITR_ENV_AUTH": "false", "RCLONE_CONFIG_PITR_FORCE_PATH_STYLE": "true",
              "RCLONE_CONFIG_PITR_ENDPOINT": s["HOSTING_PITR_S3_PLAIN_ENDPOINT"],
              "RCLONE_CONFIG_PITR_REGION": s["HOSTING_PITR_S3_REGION"],
              "RCLONE_CONFIG_PITR_ACCESS_KEY_ID": s["HOSTING_PITR_S3_KEY"],
              "RCLONE_CONFIG_PITR_SECRET_ACCESS_KEY": s["HOSTING_PITR_S3_KEY_SECRET"]}
        return {k: v for k, v in dict(os.environ, **rc).items() if k != "AWS_CA_BUNDLE"}

    def local_repo_files(self):
        """Files in the drill folder's repository path (none when the repository is in the bucket)."""
        return sum(len(f) for _, _, f in os.walk(os.path.join(self.dir, "repo")))

    def archiver(self):
        row = self.psql("SELECT archived_count, failed_count, last_archived_wal FROM pg_stat_archiver")
        return row.split("|") if row else None


class Writer(threading.Thread):
    """Creates one site every `every` seconds and keeps those the API acknowledged (201), with times."""

    def __init__(self, api, prefix="w", every=0.2):
        super().__init__(daemon=True)
        self.api, self.prefix, self.every = api, prefix, every
        self.sent, self.acked = [], []    # (name, t_sent) / (name, t_sent, t_ack)
        self.halt = threading.Event()

    def run(self):
        i = 0
        while not self.halt.is_set():
            name, t0 = f"{self.prefix}-{i:05d}", time.time()
            i += 1
            self.sent.append((name, t0))
            try:
                st = self.api.call("POST", "/api/v1/sites", {"name": name}, timeout=3)[0]
            except Exception:  # noqa: BLE001  (the database is gone: not acknowledged)
                st = None
            if st == 201:
                self.acked.append((name, t0, time.time()))
            self.halt.wait(max(0.0, t0 + self.every - time.time()))

    def stop(self):
        self.halt.set()
        self.join(10)


def pg_time(t):
    """A client epoch as a recovery target PostgreSQL and date(1) both read."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}+00:00"


def point_in_time(app, x, C, verify_live):
    """Phase P of the drill; x holds its state (services, users, expected data), C its checks.
    Returns the app running on the cluster restored to just before the deletion."""
    pitr, users, expected, history = x["pitr"], x["users"], x["expected"], x["history"]
    victim = "carol-site1"
    write_s = float(os.environ.get("DRILL_WRITE_SECONDS", "75"))
    writer = Writer(Api(app.addr, users["alice"].token))
    t_start = time.time()
    writer.start()
    time.sleep(10)
    t_mistake = time.time()
    time.sleep(0.5)   # commits before the target and the deletion's commit are apart
    st = users["carol"].call("DELETE", f"/api/v1/sites/{victim}")[0]
    C.check(f"the mistake: site {victim} deleted", st == 204, str(st))
    time.sleep(max(0.0, t_start + write_s - time.time()))
    arch = pitr.archiver()
    t_crash = pitr.crash()
    writer.stop()
    app.stop()
    hosts_down(x)
    pitr.wipe()
    wipe_app_side(x)
    log(f"crashed: primary + replica killed and deleted {t_crash - t_start:.1f} s after the writes began; "
        f"{len(writer.acked)} writes acknowledged; archiver before the crash: {arch}")

    # Restore to the latest archived WAL: the clock runs from here to the app answering again.
    t_rec = time.time()
    app, restore_s = restore_and_start(x, ["--to-latest"], C)
    rto_s = time.time() - t_rec
    present = set(pitr.psql("SELECT name FROM sites WHERE name LIKE 'w-%'", db="hosting").split())
    lost = [(n, ts, ta) for n, ts, ta in writer.acked if n not in present]
    rpo_s = (t_crash - min(ta for _, _, ta in lost)) if lost else 0.0
    timeout = float(pitr.settings["archive_timeout"])
    print(f"PITR to latest: {len(writer.acked)} acknowledged writes, {len(lost)} lost, RPO {rpo_s:.1f} s "
          f"(archive_timeout {timeout:.0f} s); restore command {restore_s:.1f} s, RTO (restore start -> app "
          f"ready) {rto_s:.1f} s", flush=True)
    C.check("to latest: acknowledged writes lost span at most archive_timeout + 10 s (RPO <= ~1 min)",
            rpo_s <= timeout + 10, f"{len(lost)} of {len(writer.acked)} lost, {rpo_s:.1f} s")
    C.check("to latest: every write acknowledged before the last archived segment is there",
            all(n in present for n, _, ta in writer.acked if ta < t_crash - timeout - 10))
    C.check("to latest: the mistake is replayed too (the deleted site stays deleted)",
            users["carol"].call("GET", f"/api/v1/sites/{victim}")[0] == 404)
    kept = {s: e for s, e in expected.items() if s != victim}
    hist = {s: e["api"].call("GET", f"/api/v1/sites/{s}/deploys")[2] for s, e in kept.items()}
    C.check("to latest: deploy history identical for every other site",
            all(h and h["items"] == history[s] for s, h in hist.items()))
    C.check("to latest: every other live site serves its live deploy byte-identical",
            verify_live(app.addr, kept, x["live_before"]))
    tb = [n for n, tok in x["tokens_ok"] if Api(app.addr, tok).call("GET", "/api/v1/whoami")[0] != 200]
    C.check("to latest: every token works", not tb, ", ".join(tb))
    st = users["alice"].call("POST", "/api/v1/sites", {"name": "after-pitr"})[0]
    C.check("to latest: the restored primary takes writes", st == 201, str(st))
    C.check("to latest: the restored primary archives again (next timeline)", archives_again(pitr))
    rep = subprocess.run(["psql", "-X", "-qAt", x["urls"]["DATABASE_REPLICA_URL"], "-c",
                          "SELECT count(*) FROM sites WHERE name LIKE 'w-%'"], capture_output=True, text=True).stdout.strip()
    C.check("to latest: a new streaming replica carries the restored data", rep == str(len(present)), rep)
    mk = subprocess.run(["redis-cli", "-u", x["urls"]["REDIS_URL"], "GET", "drill:marker"],
                        capture_output=True, text=True).stdout.strip()
    C.check("to latest: Redis restored from the backup before the crash (marker key)", mk == "survives-restore", mk)

    # Restore to a time just before the mistake.
    app.stop()
    hosts_down(x)
    pitr.wipe()
    wipe_app_side(x)
    t_rec = time.time()
    app, restore_s = restore_and_start(x, ["--to-time", pg_time(t_mistake)], C)
    to_time_s = time.time() - t_rec
    api = users["carol"]
    h = api.call("GET", f"/api/v1/sites/{victim}/deploys")[2]
    C.check(f"to time: site {victim} is back with its deploy history", h is not None and h.get("items") == history[victim],
            f"target {pg_time(t_mistake)}")
    bad = [f"{d}{p}" for d, files in expected[victim]["deploys"].items() for p, body in files.items()
           if api.site_get(f"{d}--{victim}.localhost", p)[2] != body]
    C.check(f"to time: every file of every deploy of {victim} is byte-identical", not bad, ", ".join(bad[:3]))
    C.check(f"to time: {victim} serves its live deploy again", verify_live(app.addr, {victim: expected[victim]}, x["live_before"]))
    present = set(pitr.psql("SELECT name FROM sites WHERE name LIKE 'w-%'", db="hosting").split())
    before = [n for n, _, ta in writer.acked if ta < t_mistake]
    after = [n for n, ts in writer.sent if ts > t_mistake]
    C.check("to time: writes acknowledged before the target are there, none sent after it",
            all(n in present for n in before) and not any(n in present for n in after),
            f"{len(before)} before, {len(present)} present, {sum(n in present for n in after)} of {len(after)} later ones present")
    print(f"PITR to time: restore command {restore_s:.1f} s, restore start -> app ready {to_time_s:.1f} s", flush=True)
    x["figures"] = dict(acked=len(writer.acked), lost=len(lost), rpo_s=rpo_s, rto_s=rto_s, to_time_s=to_time_s)
    return app


def hosts_down(x):
    """Every service of the block stopped; with S3, all but Garage: its nodes stand for hosts of their
    own, which keep the repository and the site files while the database hosts are lost."""
    if not x["pitr"].s3:
        services(x["senv"], "down", check=False)
        return
    x["pitr"].crash()   # primary and replica (already gone after the crash itself)
    pidf = os.path.join(x["state"], "redis", "redis.pid")
    if os.path.exists(pidf):
        pid = int(open(pidf).read().strip())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        wait_gone([pid])


def wipe_app_side(x):
    """Redis's files and the app's data folder go with the lost hosts, as in phase 4."""
    for p in (os.path.join(x["state"], "redis"), x["data"]):
        shutil.rmtree(p, ignore_errors=True)


def restore_and_start(x, how, C):
    """deploy/backup/restore in point-in-time mode, then PostgreSQL, replica + Redis, app."""
    pitr = x["pitr"]
    env = dict(x["benv"], **{k: pitr.env[k] for k in ("PGBACKREST_CONFIG", "PGHOST", "PGPORT", "PG_DATA_DIR")})
    t = time.time()
    r = subprocess.run([os.path.join(REPO, "deploy/backup/restore"), *how], env=env, capture_output=True, text=True)
    restore_s = time.time() - t
    sys.stderr.write(r.stderr[-2000:])
    C.check(f"deploy/backup/restore {' '.join(how)} exits 0", r.returncode == 0, f"{restore_s:.1f} s")
    pitr.start_restored()
    services(x["senv"], "up")     # the replica from the restored primary, Redis on its restored files
    app = App(x["binary"], x["app_env"], f"{x['base']}.20", os.path.join(x["tmp"], "app.log"))
    x["apps"].append(app)
    app.start()
    return app, restore_s


def archives_again(pitr):
    pitr.psql("SELECT pg_switch_wal()")
    for _ in range(100):
        a = pitr.archiver()
        if a and a[2] and not a[2].startswith("00000001"):
            return True
        time.sleep(0.2)
    return False
