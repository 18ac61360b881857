// Shared settings of the k6 scripts: the seed's service-level thresholds and the target.
//
// Environment (k6 run -e NAME=value ...):
//   BASE_URL   where requests go, e.g. https://blog.example.com (default http://127.0.0.1:3000)
//   HOST       optional Host header, to reach a site by IP or through a local port
//              (e.g. BASE_URL=http://127.0.0.1:3000 HOST=bench.localhost)
//   VUS        virtual users, i.e. concurrent connections (default 64, as the harness)
//   DURATION   how long each scenario runs (default 60s)

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
export const HOST = __ENV.HOST || '';
export const VUS = parseInt(__ENV.VUS || '64', 10);
export const DURATION = __ENV.DURATION || '60s';

// The seed's targets: p95 < 300 ms, p99 < 500 ms, error rate < 0.1 %.
// abortOnFail is off on purpose: an operator wants the whole report, then the verdict.
export const SEED_THRESHOLDS = {
  http_req_duration: ['p(95)<300', 'p(99)<500'],
  http_req_failed: ['rate<0.001'],
  checks: ['rate>0.999'],
};

export function params(extraHeaders = {}, tags = {}) {
  const headers = Object.assign({}, extraHeaders);
  if (HOST) headers.Host = HOST;
  return { headers, tags };
}

// Report the percentiles the thresholds use, not only k6's default avg/p90/p95.
export const SUMMARY_TREND_STATS = ['avg', 'min', 'med', 'p(95)', 'p(99)', 'max'];
