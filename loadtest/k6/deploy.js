// Deploy: the digest protocol hostctl uses (README, "API"), driven by k6. The first
// iteration deploys FILES generated files (all uploaded); each later iteration changes one
// file and redeploys, which must upload exactly one file. Mirrors the harness's "deploy"
// scenario (loadtest/bench), for operators measuring a real deployment's control plane.
//
//   k6 run -e API_URL=https://hosting.example.com -e TOKEN=hst_... -e SITE=k6-deploy \
//          -e FILES=1000 loadtest/k6/deploy.js
//
// Mind the API rate limit (HOSTING_RATE_LIMIT_PER_MINUTE, 1,200 a minute per token by
// default): the first deploy makes FILES + 2 requests.
import http from 'k6/http';
import crypto from 'k6/crypto';
import { check, fail } from 'k6';
import { Trend, Counter } from 'k6/metrics';

const API_URL = (__ENV.API_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
const TOKEN = __ENV.TOKEN || fail('set TOKEN to an API token (hostctl tokens create k6)');
const SITE = __ENV.SITE || 'k6-deploy';
const FILES = parseInt(__ENV.FILES || '1000', 10);
const REDEPLOYS = parseInt(__ENV.REDEPLOYS || '5', 10);

const firstDeploy = new Trend('deploy_first_seconds');
const redeploy = new Trend('deploy_one_file_seconds');
const uploaded = new Counter('deploy_files_uploaded');

export const options = {
  scenarios: {
    deploys: { executor: 'shared-iterations', vus: 1, iterations: REDEPLOYS + 1, maxDuration: '30m' },
  },
  thresholds: {
    // The project's goal: a one-file redeploy of a 10,000-file site finishes in under 2 s.
    deploy_one_file_seconds: ['max<2'],
    http_req_failed: ['rate<0.001'],
    checks: ['rate==1'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(95)', 'p(99)', 'max'],
};

const auth = { headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' } };

function fileBody(i, round) {
  // Deterministic bytes; file 0 changes every round, the others never.
  const filler = 'static site hosting '.repeat(50 + (i % 150));
  return `<!doctype html><title>page ${i}</title><!-- ${i === 0 ? round : 0} -->\n${filler}\n`;
}

export function setup() {
  const res = http.post(`${API_URL}/api/v1/sites`, JSON.stringify({ name: SITE }), auth);
  if (res.status !== 201 && res.status !== 200 && res.status !== 409) {
    fail(`creating site ${SITE}: HTTP ${res.status} ${res.body}`);
  }
}

export default function () {
  const round = __ITER; // 0: first deploy, then one-file redeploys
  const started = Date.now();
  const bodies = {};
  const files = {};
  for (let i = 0; i < FILES; i++) {
    const body = fileBody(i, round);
    const sha = crypto.sha256(body, 'hex');
    bodies[sha] = body;
    files[`/p${Math.floor(i / 100)}/page-${i}.html`] = sha;
  }
  const created = http.post(`${API_URL}/api/v1/sites/${SITE}/deploys`, JSON.stringify({ files }), auth);
  if (!check(created, { 'deploy created': (r) => r.status === 201 || r.status === 200 })) {
    fail(`create deploy: HTTP ${created.status} ${created.body}`);
  }
  const { id, required } = created.json();
  for (const sha of required) {
    const put = http.put(`${API_URL}/api/v1/deploys/${id}/files/${sha}`, bodies[sha], {
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/octet-stream' },
      tags: { name: 'upload' },
    });
    check(put, { 'file uploaded': (r) => r.status === 204 || r.status === 200 });
  }
  uploaded.add(required.length);
  const pub = http.post(`${API_URL}/api/v1/deploys/${id}/publish`, null, auth);
  check(pub, { 'deploy published': (r) => r.status === 200 });
  const seconds = (Date.now() - started) / 1000;
  if (round === 0) {
    firstDeploy.add(seconds);
  } else {
    redeploy.add(seconds);
    check(required, { 'a one-file redeploy uploads one file': (r) => r.length === 1 });
  }
}
