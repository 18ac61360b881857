"""Helpers shared by deploy/local/dr-drill and deploy/local/failover-test (Python 3.11 stdlib only).

Everything runs on loopback; every process started here is stopped by its PID."""
import http.client
import io
import json
import os
import random
import signal
import socket
import subprocess
import tarfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class Checks:
    """Collects PASS/FAIL lines and prints the closing 'N passed, M failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}" + (f"  ({detail})" if detail else ""), flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f"  ({detail})" if detail else ""), flush=True)
        return ok

    def summary(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def port_free(addr, port):
    s = socket.socket()
    try:
        s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pick_subnet(prefix, ports=(5432, 6379, 3000, 9000)):
    """A 127.<prefix>.<n>.x block whose .10/.11/.12/.20 addresses have the given ports free."""
    for _ in range(50):
        n = random.randint(100, 250)
        base = f"127.{prefix}.{n}"
        if all(port_free(f"{base}.{h}", p) for h in (10, 11, 12, 20) for p in ports):
            return base
    raise RuntimeError("no free loopback block found")


def ensure_binaries():
    """The hosting-app binary: HOSTING_APP_BIN when set (e.g. target/debug/hosting-app, already built by
    `cargo test`), else target/release/hosting-app, built (with hostctl) when missing."""
    if os.environ.get("HOSTING_APP_BIN"):
        return os.path.abspath(os.environ["HOSTING_APP_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    app = os.path.join(target, "release", "hosting-app")
    if not os.path.exists(app):
        log("building hosting-app (release)")
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "hosting-app", "-p", "hostctl"],
                       cwd=REPO, check=True)
    return app


class App:
    """One hosting-app process in cluster mode, stopped by PID."""

    def __init__(self, binary, env, addr, logpath):
        self.binary, self.addr, self.logpath = binary, addr, logpath
        self.env = dict(os.environ, **env, HOSTING_LISTEN=f"{addr}:3000", HOSTING_MGMT_LISTEN=f"{addr}:9000")
        self.proc = None

    def start(self, timeout=60):
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen([self.binary], env=self.env, stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hosting-app exited with {self.proc.returncode}; see {self.logpath}")
            try:
                st, _, _ = request(self.addr, 9000, "GET", "/readyz", timeout=1)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"hosting-app not ready in {timeout}s; see {self.logpath}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def request(addr, port, method, path, body=None, headers=None, host=None, timeout=10):
    c = http.client.HTTPConnection(addr, port, timeout=timeout)
    try:
        h = dict(headers or {})
        h["Host"] = host or "localhost"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


class Api:
    def __init__(self, addr, token):
        self.addr, self.token = addr, token

    def call(self, method, path, obj=None, raw=None, ctype=None, timeout=20):
        h = {"Authorization": f"Bearer {self.token}"}
        body = None
        if obj is not None:
            body = json.dumps(obj).encode()
            h["Content-Type"] = "application/json"
        elif raw is not None:
            body = raw
            h["Content-Type"] = ctype or "application/gzip"
        st, hdrs, data = request(self.addr, 3000, method, path, body, h, timeout=timeout)
        self.last_headers = hdrs
        try:
            j = json.loads(data) if data else None
        except ValueError:
            j = None
        return st, hdrs, j

    def site_get(self, host, path="/"):
        return request(self.addr, 3000, "GET", path, host=host)


def make_site(files):
    """{path: bytes} -> .tar.gz bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for p, data in sorted(files.items()):
            ti = tarfile.TarInfo(p.lstrip("/"))
            ti.size = len(data)
            ti.mtime = 1700000000
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def random_files(rng, tag, big=False):
    files = {
        "/index.html": f"<!doctype html><h1>{tag}</h1>\n".encode(),
        "/about.html": f"<p>about {tag} {rng.random()}</p>\n".encode(),
        "/css/site.css": f"body{{color:#{rng.randrange(16**6):06x}}}\n".encode(),
        "/img/bin.dat": rng.randbytes(rng.randint(1000, 20000)),
    }
    if big:
        files["/download/big.bin"] = rng.randbytes(600 * 1024)
    return files


def services(env, *args, timeout=600, check=True):
    return subprocess.run([os.path.join(REPO, "deploy", "local", "services"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=check)


def deploy_digest(api, site, files, publish=True, timeout=20):
    """Digest deploy (the protocol hostctl uses): create, upload what is required, publish.
    Returns (status, deploy_json) of the last step; status 200/201 on success."""
    import hashlib
    digests = {p: hashlib.sha256(b).hexdigest() for p, b in files.items()}
    by_hash = {digests[p]: files[p] for p in files}
    st, _, j = api.call("POST", f"/api/v1/sites/{site}/deploys", {"files": digests}, timeout=timeout)
    if st not in (200, 201):
        return st, j
    did = j["id"]
    for h in j.get("required", []):
        st2, _, j2 = api.call("PUT", f"/api/v1/deploys/{did}/files/{h}", raw=by_hash[h],
                              ctype="application/octet-stream", timeout=timeout)
        if st2 not in (200, 201, 204):
            return st2, j2
    if not publish:
        return st, j
    return api.call("POST", f"/api/v1/deploys/{did}/publish", timeout=timeout)[0::2]
