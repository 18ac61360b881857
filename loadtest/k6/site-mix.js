// Real site mix: paths of a deployed site requested along a Zipf-like distribution (the
// first path of the list is the most popular, the n-th is requested 1/n as often), like the
// harness's "site mix" scenario. Also the script for the full topology: point BASE_URL at
// HAProxy (https://docs.example.com) instead of one app.
//
//   find public -type f | sed 's|^public||' > paths.txt     # one path a line, hottest first
//   k6 run -e BASE_URL=https://docs.example.com -e PATHS=paths.txt loadtest/k6/site-mix.js
//
// ACCEPT_ENCODING (default "gzip, br", as browsers send) exercises the compressed variants;
// set it to "identity" to compare with the harness, which measures identity bodies.
import http from 'k6/http';
import { check } from 'k6';
import { SharedArray } from 'k6/data';
import { BASE_URL, DURATION, SEED_THRESHOLDS, SUMMARY_TREND_STATS, VUS, params } from './lib/common.js';

const ZIPF_S = parseFloat(__ENV.ZIPF_S || '1.0');
const ACCEPT_ENCODING = __ENV.ACCEPT_ENCODING || 'gzip, br';

// Loaded once, shared read-only by every VU.
const PATHS = new SharedArray('paths', () => {
  const text = open(__ENV.PATHS || './paths.txt');
  return text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0)
    .map((l) => (l.startsWith('/') ? l : `/${l}`));
});

// Cumulative Zipf weights, computed per VU (cheap: one pass over the list).
const CUMULATIVE = (() => {
  const out = new Array(PATHS.length);
  let acc = 0;
  for (let i = 0; i < PATHS.length; i++) {
    acc += 1 / Math.pow(i + 1, ZIPF_S);
    out[i] = acc;
  }
  return out;
})();

function pick() {
  const x = Math.random() * CUMULATIVE[CUMULATIVE.length - 1];
  let lo = 0;
  let hi = CUMULATIVE.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (CUMULATIVE[mid] < x) lo = mid + 1; else hi = mid;
  }
  return PATHS[lo];
}

export const options = {
  scenarios: {
    site_mix: { executor: 'constant-vus', vus: VUS, duration: DURATION },
  },
  thresholds: SEED_THRESHOLDS,
  summaryTrendStats: SUMMARY_TREND_STATS,
};

export function setup() {
  if (PATHS.length === 0) throw new Error('PATHS file lists no paths');
}

export default function () {
  const path = pick();
  // One tag value for every path: per-path tags would make unbounded metric series.
  const res = http.get(`${BASE_URL}${encodeURI(path)}`,
    params({ 'Accept-Encoding': ACCEPT_ENCODING }, { name: 'site-mix' }));
  check(res, { 'status is 200 or 304': (r) => r.status === 200 || r.status === 304 });
}
