#!/usr/bin/env python3
"""Seed fidelity test: docker-compose.yml and docker-compose.prod.yml against the
architecture's tables (docs/architecture.md; the seed's "Container Overview",
"Docker Networks", "Port Mappings", "Volume Mapping", "Scaling Strategy" and
"Resource Allocation per Environment" sections). The expected values are data
below; change them only when the architecture changes.

Usage: check_seed_fidelity.py [REPO_ROOT]   -> prints one line per failure, exit 1 on any.
"""
import re
import sys
from pathlib import Path

import yaml

# Seed "Container Overview": container -> (image repo, version prefix or None, ports, volumes, networks, cpus, memory MiB)
# Version None = the seed says "latest": we require a pinned tag instead.
CONTAINERS = {
    "haproxy":          ("haproxy", "2.9", [80, 443, 8404], ["haproxy_ssl"], ["proxy_net"], 1.0, 512),
    "nginx-proxy-1":    ("nginx", None, [8080], ["nginx_cache", "nginx_logs"], ["proxy_net", "app_net"], 0.5, 256),
    "nginx-proxy-2":    ("nginx", None, [8080], ["nginx_cache", "nginx_logs"], ["proxy_net", "app_net"], 0.5, 256),
    "app":              ("hosting-app", None, [3000], [], ["app_net", "cache_net", "db_net", "monitor_net"], 2.0, 1024),
    "postgres-primary": ("postgres", "16", [5432], ["postgres_data"], ["db_net", "monitor_net"], 2.0, 2048),
    "postgres-replica": ("postgres", "16", [5432], ["postgres_replica_data"], ["db_net", "monitor_net"], 2.0, 2048),
    "redis":            ("redis", "7.2", [6379], ["redis_data"], ["cache_net", "monitor_net"], 1.0, 512),
    "prometheus":       ("prom/prometheus", None, [9090], ["prometheus_data"], ["monitor_net", "app_net", "db_net"], 1.0, 1024),
    "grafana":          ("grafana/grafana", None, [3000], ["grafana_data"], ["monitor_net"], 0.5, 512),
    "loki":             ("grafana/loki", None, [3100], ["loki_data"], ["monitor_net"], 1.0, 512),
    # The seed's "promtail" (grafana/promtail, /var/lib/docker): Promtail reached end of life
    # on 2026-03-02; its successor Alloy takes its place, sizes and network, and reads the
    # container logs through the Docker socket instead of /var/lib/docker.
    "alloy":            ("grafana/alloy", None, [], ["/var/run/docker.sock"], ["monitor_net"], 0.25, 128),
    "cadvisor":         ("gcr.io/cadvisor/cadvisor", None, [8080], ["/sys", "/var/lib/docker"], ["monitor_net"], 0.5, 256),
}
# app-1..app-3 are one scaled service. Seed "Scaling Strategy": dev 3, prod 5-10.
REPLICAS_DEV = {"app": 3}
REPLICAS_PROD = {"app": (5, 10), "nginx-proxy-1": (1, 1), "nginx-proxy-2": (1, 1)}
NGINX_TOTAL_PROD = 2
# Seed "Docker Networks"
NETWORKS = {
    "proxy_net": "172.20.0.0/24", "app_net": "172.20.1.0/24", "cache_net": "172.20.2.0/24",
    "db_net": "172.20.3.0/24", "monitor_net": "172.20.4.0/24",
}
# Seed "Port Mappings": service -> {internal: external} for published ports
PUBLISHED = {
    "haproxy": {80: 80, 443: 443, 8404: 8404},
    "postgres-primary": {5432: 5432},
    "prometheus": {9090: 9090},
    "grafana": {3000: 3001},
    "cadvisor": {8080: 8080},
}
NOT_PUBLISHED = ["nginx-proxy-1", "nginx-proxy-2", "app", "redis"]
# Seed "Resource Allocation per Environment", production column (cpus, MiB)
PROD_SIZES = {"app": (2.0, 2048), "postgres-primary": (4.0, 4096), "postgres-replica": (4.0, 4096), "redis": (1.0, 1024)}
# Seed "Volume Mapping": NFS volumes (addr=10.0.1.20,nfsvers=4)
NFS_VOLUMES = ["postgres_data", "postgres_replica_data", "redis_data"]
# Services we add beyond the seed (documented in docs/deployment.md)
EXTRA_SERVICES = {"tls-init", "migrate", "postgres-exporter", "redis-exporter", "backup", "cert-installer",
                  "garage", "garage-1", "garage-2", "garage-3", "garage-init", "garage-secrets"}
# Networks we add beyond the seed, per seed container: Garage's storage_net (172.20.5.0/24), for
# the app's S3 requests and Prometheus's scrape of Garage's /metrics
EXTRA_NETWORKS = {"app": ["storage_net"], "prometheus": ["storage_net"]}

failures = []


def fail(msg):
    failures.append(msg)


def mem_mib(v):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG])?[bB]?", str(v))
    if not m:
        return None
    n, unit = float(m.group(1)), (m.group(2) or "").lower()
    return n * {"k": 1 / 1024, "m": 1, "g": 1024, "": 1 / 1048576}[unit]


def ports_of(svc):
    """(targets, {target: published}) from short or long port syntax and expose."""
    targets, published = set(), {}
    for p in svc.get("ports", []) or []:
        if isinstance(p, dict):
            t = int(p["target"])
            targets.add(t)
            if p.get("published") is not None:
                published[t] = int(p["published"])
        else:
            parts = str(p).split(":")
            t = int(parts[-1].split("/")[0])
            targets.add(t)
            if len(parts) >= 2:
                published[t] = int(parts[-2])
    for e in svc.get("expose", []) or []:
        targets.add(int(str(e).split("/")[0]))
    return targets, published


def vol_sources(svc):
    out = []
    for v in svc.get("volumes", []) or []:
        out.append(v["source"] if isinstance(v, dict) else str(v).split(":")[0])
    return out


def check_file(path, env):
    doc = yaml.safe_load(path.read_text())
    services = doc.get("services", {})
    where = path.name
    extra = set(services) - set(CONTAINERS) - EXTRA_SERVICES
    if extra:
        fail(f"{where}: services not in the seed nor declared extra: {sorted(extra)}")
    for name, (repo, ver, ports, vols, nets, cpus, mem) in CONTAINERS.items():
        svc = services.get(name)
        if svc is None:
            fail(f"{where}: seed container {name} missing")
            continue
        image = str(svc.get("image", ""))
        img = re.sub(r"\$\{[^}]*\}", "hosting-app:var", image)
        irepo, _, tag = img.rpartition(":") if ":" in img.split("/")[-1] else (img, "", "")
        if name == "app":
            if "hosting-app" not in image and "HOSTING_IMAGE" not in image:
                fail(f"{where}: app image {image!r} is not hosting-app")
        else:
            if irepo != repo:
                fail(f"{where}: {name} image {image!r}: expected repository {repo}")
            if not tag or tag == "latest":
                fail(f"{where}: {name} image {image!r} is not pinned")
            elif ver and not (tag == ver or tag.startswith(ver + ".") or tag.startswith(ver + "-")):
                fail(f"{where}: {name} image {image!r}: seed version {ver}")
        targets, _ = ports_of(svc)
        for p in ports:
            if p not in targets:
                fail(f"{where}: {name} does not expose port {p}")
        srcs = vol_sources(svc)
        for v in vols:
            if not any(s == v or s.rstrip("/").startswith(v) for s in srcs):
                fail(f"{where}: {name} lacks volume {v}")
        snets = svc.get("networks", [])
        snets = sorted(snets) if isinstance(snets, list) else sorted(snets or {})
        if snets != sorted(nets + EXTRA_NETWORKS.get(name, [])):
            fail(f"{where}: {name} networks {snets}, seed {sorted(nets)}")
        limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        exp_cpu, exp_mem = (PROD_SIZES.get(name, (cpus, mem)) if env == "prod" else (cpus, mem))
        if float(limits.get("cpus", -1)) != exp_cpu:
            fail(f"{where}: {name} cpu limit {limits.get('cpus')}, expected {exp_cpu}")
        if mem_mib(limits.get("memory", "")) != exp_mem:
            fail(f"{where}: {name} memory limit {limits.get('memory')}, expected {exp_mem} MiB")
        if "healthcheck" not in svc and name not in ():
            fail(f"{where}: {name} has no healthcheck")
        else:
            iv = (svc.get("healthcheck") or {}).get("interval")
            if iv != "10s":
                fail(f"{where}: {name} healthcheck interval {iv}, seed: every 10 seconds")
    for name, mapping in PUBLISHED.items():
        _, pub = ports_of(services.get(name, {}))
        for internal, external in mapping.items():
            if pub.get(internal) != external:
                fail(f"{where}: {name} port {internal} published as {pub.get(internal)}, seed {external}")
    for name in NOT_PUBLISHED:
        _, pub = ports_of(services.get(name, {}))
        if pub:
            fail(f"{where}: {name} publishes {pub}, seed: internal only")
    nets = doc.get("networks", {})
    for n, subnet in NETWORKS.items():
        cfg = nets.get(n)
        if cfg is None:
            fail(f"{where}: network {n} missing")
            continue
        subs = [c.get("subnet") for c in ((cfg.get("ipam") or {}).get("config") or [])]
        if subs != [subnet]:
            fail(f"{where}: network {n} subnets {subs}, seed {subnet}")
        drv = cfg.get("driver")
        if drv != ("overlay" if env == "prod" else "bridge"):
            fail(f"{where}: network {n} driver {drv}")
    if env == "dev":
        for name, n in REPLICAS_DEV.items():
            r = (services[name].get("deploy") or {}).get("replicas")
            if r != n:
                fail(f"{where}: {name} replicas {r}, seed dev {n}")
    else:
        for name, (lo, hi) in REPLICAS_PROD.items():
            r = (services[name].get("deploy") or {}).get("replicas")
            if r is None or not lo <= r <= hi:
                fail(f"{where}: {name} replicas {r}, seed prod {lo}-{hi}")
        total = sum((services[n].get("deploy") or {}).get("replicas", 0) for n in ("nginx-proxy-1", "nginx-proxy-2"))
        if total != NGINX_TOTAL_PROD:
            fail(f"{where}: nginx tasks {total}, expected {NGINX_TOTAL_PROD}")
        vols = doc.get("volumes", {})
        for v in NFS_VOLUMES:
            opts = (vols.get(v) or {}).get("driver_opts") or {}
            o = str(opts.get("o", ""))
            if opts.get("type") != "nfs" or "10.0.1.20" not in o or "nfsvers=4" not in o:
                fail(f"{where}: volume {v} is not NFS addr=10.0.1.20,nfsvers=4 ({opts})")
        for name, svc in services.items():
            d = svc.get("deploy") or {}
            if not d.get("restart_policy"):
                fail(f"{where}: {name} has no restart_policy")
            if not d.get("update_config") or not d.get("rollback_config"):
                fail(f"{where}: {name} lacks update_config/rollback_config")
            elif d["update_config"].get("failure_action") != "rollback":
                fail(f"{where}: {name} update_config.failure_action is not rollback")
    if env == "dev":
        for name, svc in services.items():
            if name in CONTAINERS and svc.get("restart") not in ("unless-stopped", "always", "on-failure"):
                fail(f"{where}: {name} has no restart policy")


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    check_file(root / "docker-compose.yml", "dev")
    check_file(root / "docker-compose.prod.yml", "prod")
    for f in failures:
        print(f"FAIL {f}")
    n = len(CONTAINERS)
    print(f"seed fidelity: {n} containers x 2 files, {len(NETWORKS)} networks: "
          f"{'OK' if not failures else str(len(failures)) + ' mismatches'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
