// Hot file: one small file requested over and over by VUS connections (the harness's
// "hot file" scenario, loadtest/bench). Against a deployment, deploy a site containing a
// 1 KiB hot.html first (loadtest/bench shows how), then:
//
//   k6 run -e BASE_URL=https://bench.example.com loadtest/k6/hot-file.js
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e HOST=bench.localhost loadtest/k6/hot-file.js
//
// PATH_HOT overrides the file (default /hot.html).
import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, DURATION, SEED_THRESHOLDS, SUMMARY_TREND_STATS, VUS, params } from './lib/common.js';

const PATH = __ENV.PATH_HOT || '/hot.html';

export const options = {
  scenarios: {
    hot_file: { executor: 'constant-vus', vus: VUS, duration: DURATION },
  },
  thresholds: SEED_THRESHOLDS,
  summaryTrendStats: SUMMARY_TREND_STATS,
};

export default function () {
  const res = http.get(`${BASE_URL}${PATH}`, params({}, { name: 'hot' }));
  check(res, {
    'status is 200': (r) => r.status === 200,
    'has a strong ETag': (r) => (r.headers.Etag || '').startsWith('"'),
  });
}
